"""The outbox table: queue in the caller's transaction, claim with a lease, settle each attempt.

Every state change goes through `overstap.domain.delivery.DELIVERY` and is appended to the
audit chain in the same transaction, so the ledger of a message (queued, each attempt, its
outcome, replays) is the audit trail of its MessageID.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from overstap.audit.chain import AuditEvent
from overstap.domain.delivery import DELIVERY, DeliveryState, RetryPolicy
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.tables import outbox

ACTOR = "overstap outbox"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    message_id: str
    kind: str
    object_ref: str
    recipient: str
    transport: str
    payload: bytes
    payload_sha256: str
    state: DeliveryState
    attempts: int


def new_message_id() -> str:
    """WS-Addressing MessageID form; random, so it says nothing about its content."""
    return f"urn:uuid:{uuid.uuid4()}"


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        message_id=row.message_id,
        kind=row.kind,
        object_ref=row.object_ref,
        recipient=row.recipient,
        transport=row.transport,
        payload=row.payload,
        payload_sha256=row.payload_sha256,
        state=DeliveryState(row.state),
        attempts=row.attempts,
    )


class Outbox:
    """Operations on the outbox through a connection in an open transaction."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self._log = AuditLog(conn, fixed_clock(now))

    def _audit(self, item_id: str, action: str, result: str = "ok", **detail: Any) -> None:
        self._log.append(
            AuditEvent(ACTOR, action, "message", item_id, result=result, detail=detail)
        )

    def enqueue(
        self,
        *,
        kind: str,
        object_ref: str,
        recipient: str,
        transport: str,
        payload: bytes,
        message_id: str | None = None,
    ) -> str:
        """Queue one message; call it in the transaction that changes the object's state."""
        DELIVERY.transition(None, DeliveryState.QUEUED)
        message_id = message_id or new_message_id()
        digest = hashlib.sha256(payload).hexdigest()
        self.conn.execute(
            insert(outbox).values(
                message_id=message_id,
                kind=kind,
                object_ref=object_ref,
                recipient=recipient,
                transport=transport,
                payload=payload,
                payload_sha256=digest,
                state=DeliveryState.QUEUED.value,
                attempts=0,
                next_attempt_at=self.now,
                created_at=self.now,
                updated_at=self.now,
            )
        )
        self._audit(
            message_id,
            "message.queued",
            kind=kind,
            object=object_ref,
            recipient=recipient,
            transport=transport,
            sha256=digest,
        )
        return message_id

    def claim(
        self, recipient: str, *, limit: int = 100, lease: timedelta = timedelta(minutes=5)
    ) -> list[OutboxItem]:
        """Due items for one recipient, marked SENDING until `now + lease`.

        Due: queued, waiting for a retry whose time has come, or sending under a lease that ran
        out (its sender died). The caller must settle each item before the lease ends.
        """
        due = or_(
            and_(
                outbox.c.state.in_([DeliveryState.QUEUED.value, DeliveryState.RETRY_WAIT.value]),
                outbox.c.next_attempt_at <= self.now,
            ),
            and_(outbox.c.state == DeliveryState.SENDING.value, outbox.c.lease_until < self.now),
        )
        rows = self.conn.execute(
            select(outbox)
            .where(outbox.c.recipient == recipient, due)
            .order_by(outbox.c.created_at, outbox.c.message_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        items = []
        for row in rows:
            state = DeliveryState(row.state)
            DELIVERY.transition(state, DeliveryState.SENDING)
            self.conn.execute(
                update(outbox)
                .where(outbox.c.message_id == row.message_id)
                .values(
                    state=DeliveryState.SENDING.value,
                    attempts=row.attempts + 1,
                    lease_until=self.now + lease,
                    updated_at=self.now,
                )
            )
            if state is DeliveryState.SENDING:
                self._audit(row.message_id, "message.lease_expired", result="retried")
            items.append(_item(row))
        return items

    def _current(self, message_id: str) -> Any:
        row = self.conn.execute(select(outbox).where(outbox.c.message_id == message_id)).first()
        if row is None:
            raise KeyError(message_id)
        return row

    def item(self, message_id: str) -> OutboxItem:
        return _item(self._current(message_id))

    def delivered(self, message_id: str, receipt: str = "") -> None:
        row = self._current(message_id)
        DELIVERY.transition(DeliveryState(row.state), DeliveryState.DELIVERED)
        self.conn.execute(
            update(outbox)
            .where(outbox.c.message_id == message_id)
            .values(
                state=DeliveryState.DELIVERED.value,
                receipt=receipt[:2000] or None,
                lease_until=None,
                delivered_at=self.now,
                updated_at=self.now,
            )
        )
        self._audit(message_id, "message.delivered", attempts=row.attempts)

    def failed(
        self,
        message_id: str,
        error: str,
        *,
        retryable: bool,
        policy: RetryPolicy,
        rng: random.Random | None = None,
    ) -> DeliveryState:
        """Settle a failed attempt: back off and retry, or dead-letter (permanent, or too many)."""
        row = self._current(message_id)
        give_up = not retryable or policy.gives_up(row.attempts)
        target = DeliveryState.DEAD_LETTER if give_up else DeliveryState.RETRY_WAIT
        DELIVERY.transition(DeliveryState(row.state), target)
        values: dict[str, Any] = {
            "state": target.value,
            "last_error": error[:2000],
            "lease_until": None,
            "updated_at": self.now,
        }
        if not give_up:
            values["next_attempt_at"] = self.now + policy.delay(row.attempts, rng)
        self.conn.execute(update(outbox).where(outbox.c.message_id == message_id).values(values))
        self._audit(
            message_id,
            "message.dead_letter" if give_up else "message.retry",
            result="refused" if give_up else "retry",
            attempts=row.attempts,
            permanent=not retryable,
        )
        return target

    def replay(self, message_id: str) -> None:
        """Send a dead letter again, with the same MessageID and bytes."""
        row = self._current(message_id)
        DELIVERY.transition(DeliveryState(row.state), DeliveryState.QUEUED)
        self.conn.execute(
            update(outbox)
            .where(outbox.c.message_id == message_id)
            .values(
                state=DeliveryState.QUEUED.value,
                next_attempt_at=self.now,
                attempts=0,
                last_error=None,
                updated_at=self.now,
            )
        )
        self._audit(message_id, "message.replayed")

    def listing(
        self, *, state: DeliveryState | None = None, limit: int = 200
    ) -> Sequence[dict[str, Any]]:
        """Rows for people: ids, states, counts, times and errors (never the payload)."""
        cols = [
            outbox.c.message_id,
            outbox.c.kind,
            outbox.c.object_ref,
            outbox.c.recipient,
            outbox.c.transport,
            outbox.c.state,
            outbox.c.attempts,
            outbox.c.next_attempt_at,
            outbox.c.last_error,
            outbox.c.updated_at,
        ]
        query = select(*cols).order_by(outbox.c.updated_at.desc()).limit(limit)
        if state is not None:
            query = query.where(outbox.c.state == state.value)
        return [dict(r) for r in self.conn.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
        return {state: int(n) for state, n in rows}
