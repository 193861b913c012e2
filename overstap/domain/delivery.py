"""Delivery of outgoing messages: the outbox item's life and the retry policy.

An outbox item is one message (a dossier, later a signal file) with its MessageID and exact
bytes, queued in the same transaction as the state change that produced it. Senders claim due
items with a lease, so a sender killed mid-send leaves an item another sender can take over when
the lease runs out; the receiver deduplicates on the MessageID (SOAP) or the file name (SFTP),
so a resend after such a crash has one effect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from overstap.domain.states import StateMachine


class DeliveryState(StrEnum):
    QUEUED = "queued"  # waiting for its first attempt
    SENDING = "sending"  # claimed by a sender until `lease_until`
    RETRY_WAIT = "retry_wait"  # a transient failure; due again at `next_attempt_at`
    DELIVERED = "delivered"  # the receiver confirmed (receipt, or the file and manifest stored)
    DEAD_LETTER = "dead_letter"  # refused for good, or out of attempts; replayable


_D = DeliveryState
DELIVERY = StateMachine[DeliveryState](
    "delivery",
    {
        None: frozenset({_D.QUEUED}),
        _D.QUEUED: frozenset({_D.SENDING}),
        # SENDING -> SENDING: a lease that ran out (the sender died) is taken over.
        _D.SENDING: frozenset({_D.DELIVERED, _D.RETRY_WAIT, _D.DEAD_LETTER, _D.SENDING}),
        _D.RETRY_WAIT: frozenset({_D.SENDING}),
        # A replay keeps the MessageID: the receiver recognises a message it already has.
        _D.DEAD_LETTER: frozenset({_D.QUEUED}),
        _D.DELIVERED: frozenset(),
    },
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits base * 2^(n-1), at most `cap`, times a
    random factor in [1 - jitter, 1 + jitter] so retries of many items do not arrive together."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or not 0 <= self.jitter < 1 or self.base <= timedelta(0):
            raise ValueError("max_attempts >= 1, 0 <= jitter < 1 and a positive base are needed")

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1-based)."""
        raw: timedelta = min(self.cap, self.base * (2 ** max(0, attempts - 1)))
        factor = 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        return timedelta(seconds=raw.total_seconds() * factor)

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
