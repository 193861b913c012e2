"""A synthetic region's school year, replayed day by day through the signal rules: exactly the
signals its scenarios expect are raised (kind, signal date, municipality of residence on that
date, after moves), none twice, none for a young person with a startkwalificatie, and nothing is
withdrawn because nothing in these stories resolves."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from region_year import region_hub, year_of_statuses
from sqlalchemy import Engine, select

from overstap.domain.signals import evaluation_window
from overstap.region import generate_region, iter_students, load_region
from overstap.services.reconcile import reconcile
from overstap.services.signals import run_signals
from overstap.store.audit_log import AuditLog
from overstap.store.tables import signal, student


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=1500, seed=31)
    return out


def test_a_school_year_raises_exactly_the_expected_signals(
    engine: Engine, region_dir: Path, tmp_path: Path
) -> None:
    ctx = region_hub(engine, tmp_path, region_dir)
    # Every status of the year is in the store before the first run: the rules read each
    # registration as it stood on the day they look at, so this replays history (a backfill).
    reports = year_of_statuses(region_dir, "signal-truth")
    random.Random(7).shuffle(reports)
    reconcile(ctx, reports, channel="sftp", batch_size=500)

    calendar = load_region(region_dir).calendar
    expected: set[tuple[str, str, str, date, str]] = set()
    for record in iter_students(region_dir):
        key = (str(record.student.school), record.student.leerlingid)
        for e in record.scenario.expected_signals:
            expected.add((*key, e.kind.value, e.date, str(e.gemeente)))
    assert {e[2] for e in expected} == {
        "geen_aanmelding", "zomerlek", "uitval", "afgewezen_zonder_alternatief"
    }  # fmt: skip

    first, last = evaluation_window(calendar)
    moment = datetime(2027, 1, 1, tzinfo=UTC)
    day, runs = first - timedelta(days=3), 0
    while day <= last + timedelta(days=3):
        plan = run_signals(ctx, day, now=moment)
        assert plan.withdrawals == []
        if day == calendar.zomerlek_date:
            assert run_signals(ctx, day, now=moment).raises == []  # a second run: nothing new
        day += (
            timedelta(days=4)
            if day != calendar.zomerlek_date - timedelta(days=1)
            else timedelta(days=1)
        )
        runs += 1

    with engine.connect() as conn:
        rows = conn.execute(
            select(student.c.school, student.c.leerlingid, signal.c.kind, signal.c.signal_date,
                   signal.c.gemeente, signal.c.state, signal.c.regio)
            .join(student, student.c.id == signal.c.student_id)
        ).all()  # fmt: skip
        assert AuditLog(conn).verify().ok
    got = {(r[0], r[1], r[2], r[3], r[4]) for r in rows}
    assert len(got) == len(rows)  # at most one per student, kind and year
    assert got == expected, (sorted(got - expected)[:5], sorted(expected - got)[:5])
    assert {r[5] for r in rows} == {"raised"} and all(r[6] for r in rows)
