"""The set-based signal rules (overstap.store.signals, through services.signals) find exactly
what the domain's reference evaluation (overstap.domain.signals.evaluate) finds, student by
student, on generated cohorts with random histories: several institutions per student, reports
out of order and late (stale), the same news twice, duplicates and misfits that must not count,
refusals, deregistrations, moves, cohort exits, diplomas, and days all over the window."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, update

from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.domain.registration import Outcome
from overstap.domain.signals import StatusFact, StudentFacts, evaluate, evaluation_window
from overstap.domain.states import RegistrationStatus, SignalKind
from overstap.region import generate_region, load_region
from overstap.services.region_load import load_region_into_hub
from overstap.services.signals import plan_signals
from overstap.store.bulk import bulk_insert
from overstap.store.signals import calendar_for
from overstap.store.tables import residence, status_message, student

_OUTCOMES = [o.value for o in (Outcome.APPLIED, Outcome.APPLIED, Outcome.APPLIED, Outcome.SAME,
             Outcome.STALE, Outcome.DUPLICATE, Outcome.WORK_ITEM)]  # fmt: skip


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=250, seed=41)
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_queries_agree_with_the_reference(
    engine: Engine, region_dir: Path, tmp_path: Path, seed: int
) -> None:
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )
    load_region_into_hub(ctx, region_dir)
    calendar = load_region(region_dir).calendar
    first, last = evaluation_window(calendar)
    r = random.Random(seed)
    span = (calendar.year.first_day, last)

    edges = (calendar.registration_deadline, calendar.zomerlek_date, calendar.mbo_start,
             calendar.diploma_date)  # fmt: skip

    def day() -> date:
        if r.random() < 0.1:  # the boundaries the rules compare with
            return r.choice(edges)
        return date.fromordinal(r.randint(span[0].toordinal(), span[1].toordinal()))

    with engine.begin() as conn:
        conn.execute(delete(residence))
        students = conn.execute(select(student.c.id, student.c.gemeente)).all()
        messages, homes = [], []
        for n, (sid, gemeente) in enumerate(students):
            conn.execute(
                update(student)
                .where(student.c.id == sid)
                .values(
                    leaving_year=r.random() < 0.8,
                    cohort_left_on=day() if r.random() < 0.1 else None,
                    startkwalificatie_on=calendar.diploma_date if r.random() < 0.15 else None,
                    geboortedatum=date(r.choice((2004, 2005, 2008, 2010)), r.randint(1, 12), 1),
                )
            )
            if r.random() < 0.2:  # moved once or twice
                homes.append({"student_id": sid, "since": None, "gemeente": gemeente})
                for _ in range(r.randint(1, 2)):
                    homes.append(
                        {"student_id": sid, "since": day(), "gemeente": f"GM{r.randint(1, 9):04d}"}
                    )
            for _ in range(r.choice((0, 1, 1, 2, 3, 5))):
                status_day = day()
                messages.append({
                    "message_id": f"m-{seed}-{n}-{len(messages)}",
                    "received_at": datetime(2028, 1, 1, tzinfo=UTC), "channel": "sftp",
                    "mbo_brin": r.choice(("25AA", "25BB", "25CC")), "subject_key": "ps1_x",
                    "student_id": sid,
                    "dossier_id": None, "status": r.choice(list(RegistrationStatus)).value,
                    "status_date": status_day,
                    # Mostly in status order, sometimes sent out of it (a late correction).
                    "sent_at": datetime.combine(status_day + timedelta(r.choice((0, 0, 0, -3, 2))),
                                                time(r.randint(0, 23)), tzinfo=UTC),
                    "outcome": r.choice(_OUTCOMES), "work_item": None,
                })  # fmt: skip
        bulk_insert(conn, status_message, messages)
        if homes:
            conn.execute(residence.insert(), homes)
        calendar = calendar_for(conn, calendar.year)

        facts: dict[int, StudentFacts] = {}
        history: dict[int, list[StatusFact]] = {}
        for m in messages:
            if m["outcome"] in ("applied", "same", "stale"):
                history.setdefault(m["student_id"], []).append(
                    StatusFact(m["mbo_brin"], RegistrationStatus(m["status"]), m["status_date"],
                               m["sent_at"], m["message_id"])
                )  # fmt: skip
        for row in conn.execute(select(student)):
            facts[row.id] = StudentFacts(
                row.geboortedatum, row.leaving_year, row.cohort_left_on,
                row.startkwalificatie_on, history.get(row.id, []),
            )  # fmt: skip

    kinds_seen: set[SignalKind] = set()
    grace = timedelta(days=calendar.afgewezen_grace_days)
    refusals = [
        m["status_date"]
        for m in messages
        if m["status"] in ("niet_tot_inschrijving", "ingetrokken")
    ]
    edges = [d + grace for d in r.sample(refusals, 4)]  # the day a grace period ends
    days = [
        first,
        calendar.zomerlek_date,
        calendar.mbo_start,
        last,
        *edges,
        *(day() for _ in range(8)),
    ]
    for on in days:
        plan = plan_signals(ctx, on)
        got = {(s.student_id, s.kind, s.signal_date) for s in plan.raises}
        expected = {
            (sid, kind, signal_date)
            for sid, f in facts.items()
            for kind, signal_date in evaluate(f, calendar, on)
        }
        assert got == expected, (on, sorted(got - expected)[:3], sorted(expected - got)[:3])
        kinds_seen |= {k for _, k, _ in got}
    assert kinds_seen == set(SignalKind)  # every rule was exercised
