"""Reconcile registration status reports with what the hub knows: one truthful picture.

Reports arrive by SOAP or SFTP, possibly twice (the same berichtid, or the same news by both
channels), possibly out of order. For each batch, in one transaction:
1. reports already processed (berichtid in `status_message`) are duplicates: no effect;
2. the rest are matched to a student (pseudonym of the personal number, and the vo school),
   a dossier (RelatesTo, else the student's dossier for that institution) and a registration;
3. `overstap.domain.registration.decide` says what each does, in the mbo's time order;
4. registrations are upserted, every report is recorded with its outcome, every misfit becomes
   a work item, and the audit chain gets one record per report (its decision).

Set-based: a batch's students, dossiers and registrations are read with a handful of IN
queries, decided in memory, and written back with executemany.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from overstap.audit.chain import AuditEvent
from overstap.batching import chunks, fewer_collections
from overstap.bootstrap import HubContext
from overstap.domain.registration import Current, Outcome, StatusReport, WorkItemKind, decide
from overstap.domain.states import DossierState, RegistrationStatus
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.bulk import bulk_insert
from overstap.store.engine import as_utc
from overstap.store.lookup import one_of
from overstap.store.tables import dossier, registration, status_message, student, work_item

ACTOR = "overstap reconcile"
_UNANNOUNCED = "no dossier of this student for this institution (applied; to check)"
# The mbo registers first and the school's dossier follows (approval takes weeks): the
# registration is real and counts (else the deadline would signal a registered student), and a
# person sees why the dossier is not there, in words that fit its state: a refused or
# withdrawn dossier must never be sent because an institution asked.
_NOT_SENT = {
    DossierState.GEWEIGERD.value: "consent was refused: the dossier is not to be sent (applied)",
    DossierState.INGETROKKEN.value: "the school withdrew the dossier: not to be sent (applied)",
    DossierState.DEAD_LETTER.value: "the institution refused the dossier: see the dead letter "
    "(applied)",
}


def _not_sent(state: str) -> str:
    return _NOT_SENT.get(state, f"the dossier is {state}, not sent yet (applied)")


_SENT = {DossierState.VERZONDEN.value, DossierState.AFGELEVERD.value}


@dataclass
class ReconcileReport:
    reports: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    work_items: Counter[str] = field(default_factory=Counter)


@dataclass
class _Batch:
    """What the store holds for one batch of reports."""

    seen: set[str]
    students: dict[str, tuple[int, str]]  # subject key -> (student id, vo school location)
    dossiers: dict[str, tuple[int, str, str]]  # dossier id -> (student id, receiving, state)
    by_student_mbo: dict[tuple[int, str], tuple[str, str]]  # -> (dossier id, state)
    registrations: dict[tuple[int, str], tuple[int, Current]]  # -> (row id, current)
    enrolled: dict[int, set[str]]  # student id -> institutions where ingeschreven


def _seen(conn: Connection, reports: Sequence[StatusReport]) -> set[str]:
    """The berichtids of `reports` already in the ledger."""
    ids = [r.message_id for r in reports]
    return set(
        conn.execute(
            select(status_message.c.message_id).where(
                one_of(conn, status_message.c.message_id, ids)
            )
        ).scalars()
    )


def _load(conn: Connection, seen: set[str], keys: set[str]) -> _Batch:
    """What the store holds on the students with these subject keys."""
    students = {
        row.subject_key: (row.id, row.school)
        for row in conn.execute(
            select(student.c.id, student.c.subject_key, student.c.school).where(
                one_of(conn, student.c.subject_key, keys)
            )
        )
    }
    student_ids = [sid for sid, _ in students.values()]
    dossiers: dict[str, tuple[int, str, str]] = {}
    by_student_mbo: dict[tuple[int, str], tuple[str, str]] = {}
    for row in conn.execute(
        select(dossier.c.dossier_id, dossier.c.student_id, dossier.c.receiving, dossier.c.state)
        .where(one_of(conn, dossier.c.student_id, student_ids))
        .order_by(dossier.c.created_at)
    ):
        dossiers[row.dossier_id] = (row.student_id, row.receiving, row.state)
        by_student_mbo[(row.student_id, row.receiving)] = (row.dossier_id, row.state)
    registrations: dict[tuple[int, str], tuple[int, Current]] = {}
    enrolled: dict[int, set[str]] = {}
    for row in conn.execute(
        select(
            registration.c.id,
            registration.c.student_id,
            registration.c.mbo_brin,
            registration.c.status,
            registration.c.status_at,
        ).where(one_of(conn, registration.c.student_id, student_ids))
    ):
        status = RegistrationStatus(row.status)
        registrations[(row.student_id, row.mbo_brin)] = (
            row.id,
            Current(status, as_utc(row.status_at)),
        )
        if status is RegistrationStatus.INGESCHREVEN:
            enrolled.setdefault(row.student_id, set()).add(row.mbo_brin)
    return _Batch(seen, students, dossiers, by_student_mbo, registrations, enrolled)


@fewer_collections()
def reconcile(
    ctx: HubContext,
    reports: Iterable[StatusReport],
    *,
    channel: str,
    batch_size: int = 5000,
    now: datetime | None = None,
) -> ReconcileReport:
    """Process reports (any order, any duplicates); see the module docstring."""
    result = ReconcileReport()
    moment = now or datetime.now(UTC)
    for chunk in chunks(reports, batch_size):
        # The mbo's time orders the reports of one registration within the batch too.
        chunk.sort(key=lambda r: r.sent_at)
        with ctx.engine.begin() as conn:
            _reconcile_batch(conn, ctx, chunk, channel, moment, result)
    return result


def _reconcile_batch(
    conn: Connection,
    ctx: HubContext,
    chunk: list[StatusReport],
    channel: str,
    moment: datetime,
    result: ReconcileReport,
) -> None:
    seen = _seen(conn, chunk)
    # A replayed stream is all duplicates: no pseudonyms and no lookups for those.
    subjects = [
        None if r.message_id in seen else ctx.pseudonyms.subject(r.identifier) for r in chunk
    ]
    batch = _load(conn, seen, {s for s in subjects if s is not None})
    messages: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    inserts: dict[tuple[int, str], dict[str, Any]] = {}
    updates: dict[int, dict[str, Any]] = {}
    events: list[AuditEvent] = []
    for report, subject in zip(chunk, subjects, strict=True):
        result.reports += 1
        mbo = str(report.mbo)
        if subject is None or report.message_id in batch.seen:  # None: seen before this batch
            result.outcomes[Outcome.DUPLICATE.value] += 1
            continue  # already in the ledger with its decision; nothing new to record
        batch.seen.add(report.message_id)
        student_id: int | None = None
        dossier_id: str | None = report.dossier_id
        verdict: Outcome | WorkItemKind
        detail = ""
        flag: WorkItemKind | None = None  # a work item beside an applied report
        known = batch.students.get(subject)
        if known is None:
            verdict, detail = WorkItemKind.UNKNOWN_STUDENT, "no student with this number"
        elif known[1][:4] != str(report.vo):
            student_id = known[0]
            verdict, detail = WorkItemKind.WRONG_SCHOOL, f"known at school {known[1]}"
        else:
            student_id = known[0]
            verdict, dossier_id, detail, flag = _match(batch, report, student_id, mbo)
        if isinstance(verdict, Outcome) and student_id is not None:
            key = (student_id, mbo)
            held = batch.registrations.get(key)
            verdict = decide(held[1] if held else None, report)
            if verdict is Outcome.APPLIED:
                _apply(batch, key, report, dossier_id, moment, inserts, updates)
                if flag is not None:
                    items.append(_item(report, subject, student_id, flag, detail, moment))
                    result.work_items[flag.value] += 1
                if report.status is RegistrationStatus.INGESCHREVEN:
                    others = batch.enrolled.setdefault(student_id, set())
                    if others - {mbo}:
                        items.append(
                            _item(report, subject, student_id, WorkItemKind.DOUBLE_ENROLMENT,
                                  f"also ingeschreven at {', '.join(sorted(others - {mbo}))}", moment)
                        )  # fmt: skip
                        result.work_items[WorkItemKind.DOUBLE_ENROLMENT.value] += 1
                    others.add(mbo)
                elif report.status is RegistrationStatus.UITGESCHREVEN:
                    batch.enrolled.get(student_id, set()).discard(mbo)
            else:
                flag = None  # not applied: the verdict itself is the work item, if any
                if isinstance(verdict, WorkItemKind):
                    detail = (
                        f"{held[1].status.value if held else '(none)'} -> {report.status.value}"
                    )
        outcome = verdict.value if isinstance(verdict, Outcome) else Outcome.WORK_ITEM.value
        item_kind = (
            verdict.value
            if isinstance(verdict, WorkItemKind)
            else (flag.value if flag is not None and verdict is Outcome.APPLIED else None)
        )
        if isinstance(verdict, WorkItemKind):
            items.append(_item(report, subject, student_id, verdict, detail, moment))
            result.work_items[verdict.value] += 1
        result.outcomes[outcome] += 1
        messages.append(
            {
                "message_id": report.message_id,
                "received_at": moment,
                "channel": channel,
                "mbo_brin": mbo,
                "subject_key": subject,
                "student_id": student_id,
                "dossier_id": dossier_id,
                "status": report.status.value,
                "status_date": report.status_date,
                "sent_at": report.sent_at,
                "outcome": outcome,
                "work_item": item_kind,
            }
        )
        events.append(
            AuditEvent(
                ACTOR,
                "status.received",
                "message",
                report.message_id,
                result=outcome,
                origin=f"{channel}:{mbo}",
                detail={
                    "subject": subject,
                    "status": report.status.value,
                    "work_item": item_kind,
                },
            )
        )
    bulk_insert(conn, status_message, messages)
    bulk_insert(conn, work_item, items)
    bulk_insert(conn, registration, list(inserts.values()))
    for row_id, values in updates.items():
        conn.execute(update(registration).where(registration.c.id == row_id).values(values))
    AuditLog(conn, fixed_clock(moment)).append_many(events)


def _match(
    batch: _Batch, report: StatusReport, student_id: int, mbo: str
) -> tuple[Outcome | WorkItemKind, str | None, str, WorkItemKind | None]:
    """The dossier a report is about, or why there is none: (verdict, dossier id, detail, the
    work item to raise beside an applied report)."""
    if report.dossier_id is not None:
        found = batch.dossiers.get(report.dossier_id)
        if found is None or found[0] != student_id:
            return (
                WorkItemKind.NOT_APPLIED,
                report.dossier_id,
                "RelatesTo names no dossier of this student",
                None,
            )
        if found[1] != mbo:
            return (
                WorkItemKind.DOSSIER_ELSEWHERE,
                report.dossier_id,
                f"the dossier went to {found[1]}",
                None,
            )
        if found[2] not in _SENT:
            return (
                Outcome.APPLIED,
                report.dossier_id,
                _not_sent(found[2]),
                WorkItemKind.DOSSIER_NOT_SENT,
            )
        return Outcome.APPLIED, report.dossier_id, "", None
    held = batch.by_student_mbo.get((student_id, mbo))
    if held is None:
        # A registration the hub did not carry (the student applied there directly): real, so
        # it counts in the picture; a person still looks at it (a work item, like a double
        # enrolment). A report that names a dossier (RelatesTo) of someone else does not count.
        return Outcome.APPLIED, None, _UNANNOUNCED, WorkItemKind.NOT_APPLIED
    if held[1] not in _SENT:
        return Outcome.APPLIED, held[0], _not_sent(held[1]), WorkItemKind.DOSSIER_NOT_SENT
    return Outcome.APPLIED, held[0], "", None


def _apply(
    batch: _Batch,
    key: tuple[int, str],
    report: StatusReport,
    dossier_id: str | None,
    moment: datetime,
    inserts: dict[tuple[int, str], dict[str, Any]],
    updates: dict[int, dict[str, Any]],
) -> None:
    held = batch.registrations.get(key)
    values = {"status": report.status.value, "status_at": report.sent_at, "updated_at": moment}
    if held is None:
        if key in inserts:
            inserts[key].update(values)
        else:
            inserts[key] = {
                "student_id": key[0],
                "mbo_brin": key[1],
                "dossier_id": dossier_id,
                **values,
            }
        batch.registrations[key] = (0, Current(report.status, report.sent_at))
        return
    row_id = held[0]
    if row_id == 0:  # inserted earlier in this batch
        inserts[key].update(values)
    else:
        updates[row_id] = values
    batch.registrations[key] = (row_id, Current(report.status, report.sent_at))


def _item(
    report: StatusReport,
    subject: str,
    student_id: int | None,
    kind: WorkItemKind,
    detail: str,
    moment: datetime,
) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "message_id": report.message_id,
        "subject_key": subject,
        "mbo_brin": str(report.mbo),
        "student_id": student_id,
        "detail": detail,
        "created_at": moment,
    }
