"""A synthetic region's year of registration statuses, fed to the hub shuffled, twice over and
in small batches: every school's report must show exactly the standing the region's scenarios
say each student ends the year with, and "niet in beeld" exactly for those with no report."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.domain.registration import StatusReport
from overstap.region import generate_region, iter_students, load_region
from overstap.services.reconcile import reconcile
from overstap.services.region_load import load_region_into_hub
from overstap.services.reports import _RANK, NIET_IN_BEELD, school_report
from overstap.store.tables import dossier


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=600, seed=23)
    return out


def test_school_reports_match_the_scenarios(
    engine: Engine, region_dir: Path, tmp_path: Path
) -> None:
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )
    load_region_into_hub(ctx, region_dir)
    with engine.begin() as conn:
        conn.execute(update(dossier).values(state="afgeleverd"))
    reports: list[StatusReport] = []
    expected: dict[tuple[str, str], str] = {}
    for record in iter_students(region_dir):
        s = record.student
        final: dict[str, str] = {}
        for n, event in enumerate(record.scenario.status_dates):
            reports.append(
                StatusReport(
                    # Opaque like a real MessageID: it lands in the audit trail.
                    message_id=f"known-truth-{len(reports)}",
                    # The mbo's clock: events of one day keep the scenario's order.
                    sent_at=datetime.combine(event.date, time(12, 0, n), tzinfo=UTC),
                    mbo=event.brin,
                    vo=s.school.brin,
                    identifier=s.identifier,
                    status=event.status,
                    status_date=event.date,
                    leerlingid=s.leerlingid,
                )
            )
            final[str(event.brin)] = event.status.value
        if s.leaving_year:
            standing = min(final.values(), key=lambda v: _RANK[v]) if final else NIET_IN_BEELD
            expected[(str(s.school), s.leerlingid)] = standing
    random.Random(5).shuffle(reports)
    doubled = reports + random.Random(6).sample(reports, len(reports) // 3)  # both channels
    result = reconcile(ctx, doubled, channel="sftp", batch_size=97)
    assert result.outcomes["duplicate"] == len(doubled) - len(reports)
    # Registrations at an institution without a dossier from the hub (the scenario's
    # alternatives) count and are flagged for a person; nothing else may be a work item.
    assert set(result.work_items) <= {"not_applied", "double_enrolment"}, result.work_items
    got: dict[tuple[str, str], str] = {}
    for school in load_region(region_dir).vo_schools:
        for line in school_report(ctx, str(school.location)):
            got[(str(school.location), line.leerlingid)] = line.standing
    mismatches = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not mismatches, list(mismatches.items())[:5]
    assert sum(v == NIET_IN_BEELD for v in got.values()) == sum(
        v == NIET_IN_BEELD for v in expected.values()
    )
