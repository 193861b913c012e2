"""The dossiers a synthetic region's schools compose: schema-valid, and the profile rules agree
with the scenario's ground truth (who approved, and whether that was the right person)."""

from __future__ import annotations

from collections import Counter

import pytest

from mappings.dossier_xml import DossierEnvelope
from overstap.region import generate_region, iter_students, load_region
from overstap.region.dossiers import scenario_dossier
from overstap.region.model import Region, StudentRecord
from overstap.services.dossier_pipeline import checked_tree
from overstap.xml.profile import errors


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> tuple[Region, list[StudentRecord]]:
    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=1500, seed=11)
    return load_region(out), list(iter_students(out))


def envelope(region: Region, record: StudentRecord) -> DossierEnvelope:
    school = region.vo_school(record.student.school)
    institution = region.mbo_institution(record.scenario.applies_to or "")
    assert school is not None and institution is not None
    return DossierEnvelope(school.oin, institution.oin, school.name, institution.name)


def test_profile_verdict_matches_the_scenario(region: tuple[Region, list[StudentRecord]]) -> None:
    reg, records = region
    today = reg.school_year.last_day  # every approval of the year has happened
    verdicts: Counter[tuple[bool, bool]] = Counter()
    rules: Counter[str] = Counter()
    for record in records:
        dossier = scenario_dossier(record, reg)
        assert (dossier is None) == (record.scenario.applies_to is None)
        if dossier is None:
            continue
        _, schema, profile = checked_tree(dossier, envelope(reg, record), today=today)
        assert schema == [], (dossier.dossier_id, schema[:3])
        refused = errors(profile)
        rules.update(v.rule for v in refused)
        verdicts[(not refused, record.scenario.approval_valid)] += 1
        assert (not refused) == dossier.may_leave(), dossier.dossier_id
    # The profile passes exactly the dossiers the scenario approved correctly.
    assert verdicts[(True, False)] == 0 and verdicts[(False, True)] == 0
    assert verdicts[(True, True)] > 1000
    assert verdicts[(False, False)] > 10  # the generator's deliberate mistakes exist
    assert set(rules) <= {
        "VOMBO-INZAGE",
        "VOMBO-TOESTEMMING",
        "VOMBO-TOESTEMMING-DOOR",
        "VOMBO-CATEGORIE",  # a missing inzage leaves cat_ouderinzage without its data
    }


def test_dossier_ids_are_stable_unique_and_carry_no_student_key(
    region: tuple[Region, list[StudentRecord]],
) -> None:
    reg, records = region
    first = [d.dossier_id for r in records if (d := scenario_dossier(r, reg))]
    again = [d.dossier_id for r in records if (d := scenario_dossier(r, reg))]
    assert first == again and len(set(first)) == len(first)
    for record in records:
        dossier = scenario_dossier(record, reg)
        if dossier is not None:  # the id is a hash: it does not reveal the school's key
            assert record.student.leerlingid not in dossier.dossier_id
