"""A signal's life: raised once, withdrawn when the situation resolves, never raised again in
that school year; a preview writes nothing; every transition is in the audit chain under the
signal's public id, with the pseudonym and never the personal number."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from region_year import region_hub, year_of_statuses
from sqlalchemy import Engine, func, select

from overstap.domain.registration import StatusReport
from overstap.domain.states import RegistrationStatus, SignalKind
from overstap.region import generate_region, iter_students, load_region
from overstap.services.reconcile import reconcile
from overstap.services.signals import plan_signals, run_signals
from overstap.store.audit_log import AuditLog
from overstap.store.tables import audit_event, signal


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=300, seed=47)
    return out


def test_raise_withdraw_and_never_again(engine: Engine, region_dir: Path, tmp_path: Path) -> None:
    ctx = region_hub(engine, tmp_path, region_dir)
    reconcile(ctx, year_of_statuses(region_dir, "life"), channel="sftp")
    calendar = load_region(region_dir).calendar
    deadline = calendar.registration_deadline
    late = next(
        r.student
        for r in iter_students(region_dir)
        if [s.kind for s in r.scenario.expected_signals] == [SignalKind.GEEN_AANMELDING]
    )
    moment = datetime(2027, 4, 1, 12, tzinfo=UTC)

    preview = plan_signals(ctx, deadline)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(signal)).scalar_one() == 0
    raised = run_signals(ctx, deadline, now=moment)
    assert {s.signal_ref for s in raised.raises} == {s.signal_ref for s in preview.raises}
    mine = [s for s in raised.raises if s.kind is SignalKind.GEEN_AANMELDING]
    assert len(mine) == len(preview.raises) > 0
    assert run_signals(ctx, deadline, now=moment).raises == []  # the same day again: nothing

    # The student registers after the deadline: the next run withdraws that signal only.
    registered = deadline + timedelta(days=10)
    reconcile(
        ctx,
        [
            StatusReport(
                message_id="life-late-registration",
                sent_at=datetime.combine(registered, time(9), tzinfo=UTC),
                mbo=load_region(region_dir).mbo_institutions[0].brin,
                vo=late.school.brin,
                identifier=late.identifier,
                status=RegistrationStatus.ONTVANGEN,
                status_date=registered,
            )
        ],
        channel="soap",
    )
    withdrawn = run_signals(ctx, registered + timedelta(days=1), now=moment)
    assert [w.kind for w in withdrawn.withdrawals] == [SignalKind.GEEN_AANMELDING]
    ref = withdrawn.withdrawals[0].signal_ref
    # The registration is later refused: afgewezen_zonder_alternatief may follow after its
    # grace period, but geen_aanmelding is never raised again this school year.
    for day in (registered + timedelta(days=2), calendar.zomerlek_date):
        again = run_signals(ctx, day, now=moment)
        assert ref not in {s.signal_ref for s in again.raises}
    with engine.connect() as conn:
        row = conn.execute(select(signal).where(signal.c.signal_ref == ref)).one()
        assert (row.state, row.withdrawn_on) == ("withdrawn", registered + timedelta(days=1))
        trail = conn.execute(
            select(audit_event.c.action, audit_event.c.detail)
            .where(audit_event.c.object_kind == "signal", audit_event.c.object_ref == ref)
            .order_by(audit_event.c.seq)
        ).all()
        assert [a for a, _ in trail] == ["signal.raised", "signal.withdrawn"]
        number = late.identifier.value
        assert all(number not in detail and '"subject":"ps1_' in detail for _, detail in trail)
        assert AuditLog(conn).verify().ok
