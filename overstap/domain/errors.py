"""The error taxonomy, named by what the caller must do (ARCHITECTURE.md).

It lives in the domain so that the domain can raise it without importing anything else of ours;
`overstap.errors` re-exports it for the rest of the code base.
"""

from __future__ import annotations


class OverstapError(Exception):
    """Base of every error the hub raises on purpose."""


class InvalidRecord(OverstapError, ValueError):
    """One record is wrong: quarantine it with a readable reason and go on with the batch.

    `field` and `rule` are machine-readable so reports can count reasons; the message never holds a
    full BSN or onderwijsnummer (it names the position of a bad character instead).
    """

    def __init__(self, message: str, *, field: str, rule: str, record: str | None = None) -> None:
        self.field = field
        self.rule = rule
        self.record = record
        prefix = f"record {record}: " if record else ""
        super().__init__(f"{prefix}{field}: {message} [rule {rule}]")
        self.reason = message

    def for_record(self, record: str) -> InvalidRecord:
        """The same error, now naming the record it was found in."""
        return type(self)(self.reason, field=self.field, rule=self.rule, record=record)


class InvalidTransition(OverstapError):
    """A state change the transition table does not allow: a bug in the flow, fail loudly."""

    def __init__(self, machine: str, current: object, target: object) -> None:
        self.machine = machine
        self.current = current
        self.target = target
        super().__init__(f"{machine}: no transition from {current!s} to {target!s}")


class RetryableDeliveryError(OverstapError):
    """Transient delivery failure (timeout, 5xx, SOAP Server fault, 0051): retry with backoff."""


class RejectedByRecipient(OverstapError):
    """Permanent refusal by the recipient: dead-letter, visible and replayable."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"rejected by recipient: {code}: {detail}")


class ConfigurationError(OverstapError):
    """Refuse to start: names the setting and why."""

    def __init__(self, setting: str, why: str) -> None:
        self.setting = setting
        self.why = why
        super().__init__(f"configuration {setting}: {why}")
