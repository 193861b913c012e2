"""A synthetic region's year of registration statuses, fed to the hub shuffled, twice over and
in small batches: every school's report must show exactly the standing the region's scenarios
say each student ends the year with, and "niet in beeld" exactly for those with no report."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from region_year import region_hub, year_of_statuses
from sqlalchemy import Engine

from overstap.region import generate_region, iter_students, load_region
from overstap.services.reconcile import reconcile
from overstap.services.reports import NIET_IN_BEELD, furthest, school_report


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=600, seed=23)
    return out


def test_school_reports_match_the_scenarios(
    engine: Engine, region_dir: Path, tmp_path: Path
) -> None:
    ctx = region_hub(engine, tmp_path, region_dir)
    reports = year_of_statuses(region_dir, "known-truth")
    expected: dict[tuple[str, str], str] = {}
    for record in iter_students(region_dir):
        s = record.student
        final = {str(e.brin): e.status.value for e in record.scenario.status_dates}
        if s.leaving_year:
            expected[(str(s.school), s.leerlingid)] = furthest(final.values())
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
