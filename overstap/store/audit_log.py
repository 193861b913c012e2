"""The audit chain on the database: append inside the caller's transaction, verify from the start."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from overstap.audit.chain import (
    GENESIS_HASH,
    AuditEvent,
    AuditRecord,
    ChainProblem,
    ChainReport,
    seal,
    verify_records,
)
from overstap.store.tables import audit_event, audit_head

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """Appends to and reads the chain through a connection in an open transaction.

    Appending in the caller's transaction is the point: the audit record commits or rolls back
    together with the change it describes.
    """

    def __init__(self, conn: Connection, clock: Clock = utc_now) -> None:
        self._conn = conn
        self._clock = clock

    def append(self, event: AuditEvent) -> AuditRecord:
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[AuditEvent]) -> list[AuditRecord]:
        seq, prev = self._lock_head()
        now = self._clock()
        records: list[AuditRecord] = []
        for ev in events:
            seq += 1
            rec = seal(ev, seq=seq, at=now, prev_hash=prev)
            prev = rec.hash
            records.append(rec)
        if not records:
            return records
        self._conn.execute(insert(audit_event), [_row(r) for r in records])
        self._conn.execute(
            update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev)
        )
        return records

    def _lock_head(self) -> tuple[int, str]:
        # FOR UPDATE serialises appenders on PostgreSQL; SQLite ignores it and relies on the
        # BEGIN IMMEDIATE write lock (store.engine).
        row = self._conn.execute(
            select(audit_head.c.seq, audit_head.c.hash)
            .where(audit_head.c.id == 1)
            .with_for_update()
        ).first()
        if row is None:
            raise RuntimeError("audit_head is missing: run `overstap db upgrade`")
        return int(row.seq), str(row.hash)

    def records(self, *, batch: int = 5000) -> Iterator[AuditRecord]:
        """All records in seq order, streamed in batches (keyset pagination, bounded memory)."""
        last = 0
        while True:
            rows = self._conn.execute(
                select(audit_event)
                .where(audit_event.c.seq > last)
                .order_by(audit_event.c.seq)
                .limit(batch)
            ).all()
            if not rows:
                return
            yield from (_record(r) for r in rows)
            last = rows[-1].seq

    def verify(self) -> ChainReport:
        report = verify_records(self.records())
        if not report.ok:
            return report
        head = self._conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).first()
        head_seq, head_hash = (0, GENESIS_HASH) if head is None else (int(head.seq), str(head.hash))
        if (head_seq, head_hash) != (report.head_seq, report.head_hash):
            # Rows cut off the end leave a shorter, still consistent chain: only the head knows.
            problem = ChainProblem(
                report.head_seq + 1,
                f"chain ends at record {report.head_seq} but the head says {head_seq}: "
                "records removed from the end",
            )
            return ChainReport(report.count, report.head_seq, report.head_hash, problem)
        return report

    def for_object(self, object_kind: str, object_ref: str) -> Sequence[AuditRecord]:
        rows = self._conn.execute(
            select(audit_event)
            .where(audit_event.c.object_kind == object_kind, audit_event.c.object_ref == object_ref)
            .order_by(audit_event.c.seq)
        ).all()
        return [_record(r) for r in rows]


def _record(r: Row[Any]) -> AuditRecord:
    return AuditRecord(
        int(r.seq),
        r.at,
        r.actor,
        r.action,
        r.object_kind,
        r.object_ref,
        r.result,
        r.origin,
        r.detail,
        r.prev_hash,
        r.hash,
    )


def _row(r: AuditRecord) -> dict[str, object]:
    return {
        "seq": r.seq,
        "at": r.at,
        "actor": r.actor,
        "action": r.action,
        "object_kind": r.object_kind,
        "object_ref": r.object_ref,
        "result": r.result,
        "origin": r.origin,
        "detail": r.detail,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }
