"""Dossiers in the store on both backends: round trip with their student, idempotent saves,
a changed content raises the version, a dossier without its student is reported."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from dossier_samples import MBO, SCHOOL, golden_cases
from sqlalchemy import Engine, select

from overstap.audit.pseudonym import Pseudonymizer
from overstap.domain.identifiers import Gemeentecode, Oin, RegionCode
from overstap.domain.parties import DoorstroompuntRegion, MboInstitution, Municipality, VoSchool
from overstap.domain.student import Contact
from overstap.store.dossiers import find_dossiers, save_dossiers
from overstap.store.students import save_parties, save_students
from overstap.store.tables import dossier as dossier_table

NOW = datetime(2026, 1, 20, 10, tzinfo=UTC)
CASES = golden_cases()


def _load(engine: Engine) -> None:
    with engine.begin() as conn:
        save_parties(
            conn,
            [DoorstroompuntRegion(RegionCode("MC20"), "Twente", Gemeentecode("GM0153"))],
            [
                Municipality(
                    Gemeentecode("GM0153"), "Enschede", RegionCode("MC20"), Oin.for_brin(SCHOOL)
                )
            ],
            [
                VoSchool(
                    SCHOOL, "De Horizon", Oin.for_brin(SCHOOL), Gemeentecode("GM0153"), "magister"
                )
            ],
            [MboInstitution(MBO, "Regio College Oost", Oin.for_brin(MBO), "soap")],
        )
        save_students(conn, [d.student for d in CASES.values()], Pseudonymizer(bytes(32)), NOW)


def test_every_case_round_trips_through_the_store(engine: Engine) -> None:
    _load(engine)
    with engine.begin() as conn:
        first = save_dossiers(conn, list(CASES.values()), NOW)
    assert sorted(first.created) == sorted(d.dossier_id for d in CASES.values())
    with engine.connect() as conn:
        for d in CASES.values():
            [back] = find_dossiers(conn, d.student.leerlingid, str(SCHOOL))
            # The secret-address student's contact stays in the hub (it is not sent, not lost).
            assert back == d, d.dossier_id
            assert back.created.tzinfo is not None


def test_second_save_changes_nothing_and_a_correction_raises_the_version(engine: Engine) -> None:
    _load(engine)
    cases = list(CASES.values())
    with engine.begin() as conn:
        save_dossiers(conn, cases, NOW)
    with engine.begin() as conn:
        again = save_dossiers(conn, cases, NOW)
    assert (again.created, again.updated, again.unchanged) == ([], [], len(cases))

    original = CASES["warm_handover"]
    part_b = original.mentor_part
    assert part_b is not None
    handover = replace(part_b.warme_overdracht, contact=Contact(phone="053-7654321"))
    corrected = replace(original, mentor_part=replace(part_b, warme_overdracht=handover))
    with engine.begin() as conn:
        result = save_dossiers(conn, [corrected], NOW)
    assert result.updated == [original.dossier_id]
    with engine.connect() as conn:
        [back] = find_dossiers(conn, original.student.leerlingid)
        version = conn.execute(
            select(dossier_table.c.version).where(dossier_table.c.dossier_id == original.dossier_id)
        ).scalar_one()
    assert version == 2 and back.version == 2
    assert back.mentor_part is not None
    assert back.mentor_part.warme_overdracht.contact.phone == "053-7654321"


def test_dossier_without_its_student_is_reported_not_dropped(engine: Engine) -> None:
    _load(engine)
    stranger = replace(
        CASES["minor_guardian_exam"],
        dossier_id="DOS-2025-999999",
        student=replace(CASES["minor_guardian_exam"].student, leerlingid="NOT-LOADED"),
    )
    with engine.begin() as conn:
        result = save_dossiers(conn, [stranger], NOW)
    assert result.unknown_student == ["DOS-2025-999999"]
    assert result.created == [] and result.unchanged == 0
