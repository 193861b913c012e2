"""The life of one student's data in the audit chain: pulled, dossier built, sent, receipts,
statuses, signals, deliveries - and who looked. Looking is itself an audit record.

Records name a person by pseudonym only (`ps1_...`): directly as object (student.updated), in
their detail (a batch's `students.created` list, `status.received`, `signal.*`), or through the
student's objects - dossiers and signals by id, then the outbox messages and signal files that
carried those, by the ids the queueing records name. So the trail is found in three steps, each a
query on the audit table (with a text search in details: a full scan, fine for a question an
auditor asks, not for a hot path).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, or_, select

from overstap.audit.chain import AuditEvent, AuditRecord
from overstap.bootstrap import HubContext
from overstap.store.audit_log import AuditLog, fixed_clock, records_where
from overstap.store.tables import audit_event, dossier, signal, student


@dataclass(frozen=True, slots=True)
class Trail:
    subject: str
    records: list[AuditRecord]


def _matching(conn: Connection, refs: Iterable[str], texts: Iterable[str]) -> list[AuditRecord]:
    refs, texts = sorted(set(refs)), sorted(set(texts))
    if not refs and not texts:
        return []
    conditions: list[ColumnElement[bool]] = [audit_event.c.object_ref.in_(refs)] if refs else []
    # Ids are quoted in JSON details: match the quoted form, so a prefix of another id never hits.
    conditions += [audit_event.c.detail.contains(f'"{t}"', autoescape=True) for t in texts]
    return records_where(conn, or_(*conditions))


def trail_of(conn: Connection, subject: str) -> list[AuditRecord]:
    """Every audit record about the student with this pseudonym, in chain order."""
    ids = [i for (i,) in conn.execute(select(student.c.id).where(student.c.subject_key == subject))]
    dossiers = [
        d
        for (d,) in conn.execute(select(dossier.c.dossier_id).where(dossier.c.student_id.in_(ids)))
    ]
    signals = [
        s for (s,) in conn.execute(select(signal.c.signal_ref).where(signal.c.student_id.in_(ids)))
    ]
    direct = _matching(conn, [subject, *dossiers, *signals], [subject, *signals])
    files = {r.object_ref for r in direct if r.action == "signals.file_queued"}
    carried = [*dossiers, *(f"{f}.xml" for f in files), *(f"{f}.csv" for f in files)]
    queued = [r for r in _matching(conn, [], carried) if r.action == "message.queued"]
    messages = {r.object_ref for r in queued}
    later = _matching(conn, [*files, *messages], [])
    by_seq = {r.seq: r for r in (*direct, *queued, *later)}
    return [by_seq[s] for s in sorted(by_seq)]


def view_trail(
    ctx: HubContext, subject: str, *, viewer: str, origin: str, now: datetime | None = None
) -> Trail:
    """The trail, and an audit record that `viewer` looked at it (in the same transaction: no
    look without its record)."""
    moment = now or datetime.now(UTC)
    with ctx.engine.begin() as conn:
        records = trail_of(conn, subject)
        AuditLog(conn, fixed_clock(moment)).append(
            AuditEvent(
                f"person:{viewer}",
                "audit.trail_viewed",
                "student",
                subject,
                origin=origin,
                detail={"records": len(records)},
            )
        )
    return Trail(subject, records)
