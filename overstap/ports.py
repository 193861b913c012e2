"""Ports: the small interfaces the services need from the outside world (ARCHITECTURE.md).

Adapters live in `connectors/` (real) and in tests (fakes); both pass the same contract suite in
`tests/contract/`. A port speaks in bytes and domain terms, never in a library's types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

# --- SIS exports (issue: SIS connectors) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SisSchool:
    """Which school to pull and where its data lives; `settings` are the connector's own
    (folder, host, URL, credentials by reference), read from the registry when a task runs."""

    location: str  # BRIN + vestiging, e.g. 12AB00
    mapping: str  # name of a mapping in mappings/sis/, e.g. "magister"
    connector: str  # "file", "sftp", "rest", "soap"
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportDocument:
    """One export as the SIS delivered it: a file, or one page of an API answer.

    `name` is safe to log (a file name or "page 3", never personal data). `open()` gives the
    exact bytes, as many times as needed (a parser may need two passes; quarantine stores
    bytes). `version` identifies this content for the watermark (a file's sha256, a page's
    cursor); `changed_until` is the SIS's own clock for "changed since" pulls, when it has one.
    """

    name: str
    open: Callable[[], BinaryIO]
    version: str
    changed_until: str | None = None


class SisConnector(Protocol):
    """Fetches a school's current export(s); knows transport, not format.

    `since` is the watermark the last successful pull stored (None: everything). A connector
    that cannot filter returns everything; the import is idempotent, so that costs time only.
    Transient failures raise `RetryableDeliveryError`; bad credentials or a missing folder
    `ConfigurationError`. Documents are yielded lazily and each is complete when yielded.
    """

    def fetch(self, school: SisSchool, since: str | None) -> Iterator[ExportDocument]: ...


# --- Delivery to receivers (issue: delivery) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """How one receiver takes deliveries: transport and its settings (no secrets inline)."""

    recipient: str  # mbo BRIN (later: a municipality code)
    transport: str  # soap, sftp
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send: the outbox's MessageID and exact bytes."""

    message_id: str
    object_ref: str
    payload: bytes
    sha256: str


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one message. `retryable` matters only when not `delivered`.

    `detail` is for people and the audit chain: codes and ids, never content.
    """

    message_id: str
    delivered: bool
    retryable: bool = True
    detail: str = ""


class DeliveryTransport(Protocol):
    """Sends a batch to one receiver; must be safe to call again with the same MessageIDs
    (after a crash the hub cannot know what arrived): the receiver ends with each message once.

    A failure of the whole batch before anything was sent may raise `RetryableDeliveryError`
    or `ConfigurationError`; otherwise every message gets a `SendResult`.
    """

    def send(self, route: Route, messages: Sequence[Outgoing]) -> list[SendResult]: ...
