"""Reconciling registration status reports on both backends: applied in the mbo's time order,
duplicates and the same news twice without effect, every misfit a work item, every report in the
ledger and the audit chain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub_setup import MBO, hub_with_dossiers, waiting_dossiers
from sqlalchemy import Engine, select, update

from overstap.domain.identifiers import Brin, Bsn, Oin, elfproef_remainder
from overstap.domain.registration import StatusReport
from overstap.domain.states import RegistrationStatus as S
from overstap.services.reconcile import reconcile
from overstap.store.audit_log import AuditLog
from overstap.store.dossiers import save_dossiers
from overstap.store.tables import (
    dossier,
    mbo_institution,
    registration,
    status_message,
    student,
    work_item,
)
from overstap.store.upsert import upsert

T0 = datetime(2026, 3, 10, 9, tzinfo=UTC)
OTHER = Brin("77ZZ")
LATER_BSN = Bsn("345678904")


def _valid_bsns() -> Iterator[Bsn]:
    for n in range(345678900, 345679999):
        if elfproef_remainder(str(n)) == 0:
            yield Bsn(str(n))


def _hub(engine: Engine, tmp_path: Path) -> tuple[object, dict[str, object]]:
    ctx = hub_with_dossiers(engine, tmp_path, "soap")
    cases = waiting_dossiers()
    with engine.begin() as conn:
        upsert(
            conn,
            mbo_institution,
            [
                {
                    "brin": str(OTHER),
                    "name": "Ander ROC",
                    "oin": str(Oin.for_brin(OTHER)),
                    "transport": "sftp",
                }
            ],
            keys=["brin"],
        )
        # Delivered dossiers for most students; the "later" student's dossier never left.
        conn.execute(update(dossier).values(state="afgeleverd"))
        conn.execute(
            update(dossier)
            .where(dossier.c.dossier_id == cases["later"].dossier_id)
            .values(state="deel_b_ingevuld")
        )
        # Several sample students share the minor's BSN; give each other one a number of its
        # own ("later" the one its report uses), so every report names one student.
        shared = (
            conn.execute(
                select(student.c.leerlingid).where(
                    student.c.subject_key
                    == ctx.pseudonyms.subject(cases["minor_guardian_exam"].student.identifier),
                    student.c.leerlingid != cases["minor_guardian_exam"].student.leerlingid,
                )
            )
            .scalars()
            .all()
        )
        spare = (b for b in _valid_bsns() if b != LATER_BSN)
        for leerlingid in shared:
            number = LATER_BSN if leerlingid == "LL-2002" else next(spare)
            conn.execute(
                update(student)
                .where(student.c.leerlingid == leerlingid)
                .values(subject_key=ctx.pseudonyms.subject(number))
            )
        # The adult also applied to a second institution.
        adult = cases["adult_promotion"]
        save_dossiers(conn, [replace(adult, dossier_id="DOS-2025-000900", receiving=OTHER)], T0)
        conn.execute(
            update(dossier)
            .where(dossier.c.dossier_id == "DOS-2025-000900")
            .values(state="afgeleverd")
        )
    return ctx, cases  # type: ignore[return-value]


def _report(n: int, d: object, status: S, at: datetime, **changes: object) -> StatusReport:
    s = d.student  # type: ignore[attr-defined]
    base = StatusReport(
        message_id=f"MSG-{n}",
        sent_at=at,
        mbo=MBO,
        vo=s.school.brin,
        identifier=s.identifier,
        status=status,
        status_date=at.date(),
        leerlingid=s.leerlingid,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_reports_become_one_truthful_picture(engine: Engine, tmp_path: Path) -> None:
    ctx, cases = _hub(engine, tmp_path)
    minor, adult, onr = (
        cases["minor_guardian_exam"],
        cases["adult_promotion"],
        cases["onderwijsnummer"],
    )
    reports = [
        _report(1, minor, S.ONTVANGEN, T0),
        _report(1, minor, S.ONTVANGEN, T0),  # the same berichtid again (both channels)
        _report(2, minor, S.ONTVANGEN, T0 + timedelta(hours=1)),  # the same news, new id
        # Out of order: the later report arrives first.
        _report(4, onr, S.INGESCHREVEN, T0 + timedelta(days=10)),
        _report(3, onr, S.OVEREENKOMST_AANGEBODEN, T0 + timedelta(days=5)),
        _report(5, minor, S.ONTVANGEN, T0, identifier=Bsn("111222333")),  # nobody we know
        _report(6, minor, S.ONTVANGEN, T0, vo=Brin("99XX")),  # another vo school
        _report(7, minor, S.ONTVANGEN, T0, mbo=OTHER),  # never applied there
        # The dossier is not sent yet: the registration counts, and a person sends the dossier.
        _report(8, cases["later"], S.ONTVANGEN, T0, identifier=LATER_BSN),
        _report(9, adult, S.INGESCHREVEN, T0 + timedelta(days=1)),
        _report(10, adult, S.ONTVANGEN, T0 + timedelta(days=2)),  # a regression: illegal
        _report(11, adult, S.INGESCHREVEN, T0 + timedelta(days=3), mbo=OTHER),  # two enrolments
        _report(12, minor, S.ONTVANGEN, T0, dossier_id="DOS-2025-000900"),  # RelatesTo another's
    ]
    # Arrival order is not the mbo's order: shuffle the out-of-order pair's arrival too.
    result = reconcile(ctx, reports, channel="soap", batch_size=4)  # type: ignore[arg-type]
    assert result.reports == 13
    assert result.outcomes["duplicate"] == 1
    assert result.work_items == {
        "unknown_student": 1, "wrong_school": 1, "not_applied": 2, "dossier_not_sent": 1,
        "illegal_transition": 1, "double_enrolment": 1,
    }  # fmt: skip
    with engine.connect() as conn:
        ids = {r.leerlingid: r.id for r in conn.execute(select(student))}
        regs = {(r.student_id, r.mbo_brin): r.status for r in conn.execute(select(registration))}
        ledger = {r.message_id: r.outcome for r in conn.execute(select(status_message))}
        kinds = sorted(r.kind for r in conn.execute(select(work_item)))
        assert AuditLog(conn).verify().problem is None
        audited = [r for r in AuditLog(conn).records() if r.action == "status.received"]
    assert regs[(ids[minor.student.leerlingid], "25MB")] == "ontvangen"
    assert regs[(ids[cases["later"].student.leerlingid], "25MB")] == "ontvangen"
    assert ledger["MSG-8"] == "applied"
    with engine.connect() as conn:
        flagged = conn.execute(
            select(status_message.c.work_item).where(status_message.c.message_id == "MSG-8")
        ).scalar_one()
        why = conn.execute(
            select(work_item.c.detail).where(work_item.c.kind == "dossier_not_sent")
        ).scalar_one()
    # The ledger names the work item raised beside the applied report; the item names the
    # dossier's state, so nobody sends a refused dossier because an institution asked.
    assert flagged == "dossier_not_sent"
    assert why == "the dossier is deel_b_ingevuld, not sent yet (applied)"
    # Batches of 4 with the out-of-order pair split over batches: still the later status wins.
    assert regs[(ids[onr.student.leerlingid], "25MB")] == "ingeschreven"
    assert regs[(ids[adult.student.leerlingid], "25MB")] == "ingeschreven"
    assert regs[(ids[adult.student.leerlingid], str(OTHER))] == "ingeschreven"  # applied, flagged
    assert ledger["MSG-2"] == "same" and ledger["MSG-3"] == "stale"
    assert len(ledger) == 12 and len(audited) == 12  # every report but the duplicate
    assert kinds.count("double_enrolment") == 1


def test_a_replayed_stream_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    ctx, cases = _hub(engine, tmp_path)
    stream = [
        _report(i, cases["minor_guardian_exam"], s, T0 + timedelta(days=i))
        for i, s in enumerate([S.ONTVANGEN, S.OVEREENKOMST_AANGEBODEN, S.INGESCHREVEN])
    ]
    first = reconcile(ctx, stream, channel="sftp")  # type: ignore[arg-type]
    again = reconcile(ctx, list(reversed(stream)), channel="soap")  # type: ignore[arg-type]
    assert first.outcomes["applied"] == 3
    assert again.outcomes == {"duplicate": 3}
    with engine.connect() as conn:
        assert [r.status for r in conn.execute(select(registration))] == ["ingeschreven"]
