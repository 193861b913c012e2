"""A hub in a test database with a school, an institution and dossiers awaiting approval:
the golden cases plus a refusal, one answered later and one approved by the wrong person."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from dossier_samples import MBO, SCHOOL, golden_cases
from sqlalchemy import Engine

from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.domain.dossier import Approver, Dossier, JaNee
from overstap.domain.identifiers import Gemeentecode, Oin, RegionCode
from overstap.domain.parties import DoorstroompuntRegion, MboInstitution, Municipality, VoSchool
from overstap.domain.states import DossierState
from overstap.store.dossiers import save_dossiers
from overstap.store.students import save_parties, save_students

TODAY = date(2026, 3, 1)
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
__all__ = ["MBO", "NOW", "TODAY", "hub_with_dossiers", "waiting_dossiers"]


def waiting_dossiers() -> dict[str, Dossier]:
    cases = {k: replace(d, state=DossierState.DEEL_B_INGEVULD) for k, d in golden_cases().items()}
    base = cases["minor_guardian_exam"]
    assert base.inzage is not None
    cases["refused"] = replace(
        base,
        dossier_id="DOS-2025-000101",
        student=replace(base.student, leerlingid="LL-2001"),
        inzage=replace(base.inzage, toestemming=JaNee.NEE),
    )
    cases["later"] = replace(
        base,
        dossier_id="DOS-2025-000102",
        student=replace(base.student, leerlingid="LL-2002"),
        inzage=replace(base.inzage, date=TODAY + timedelta(days=10)),
    )
    cases["wrong_person"] = replace(
        base,
        dossier_id="DOS-2025-000103",
        student=replace(base.student, leerlingid="LL-2003"),
        inzage=replace(base.inzage, by=Approver.STUDENT),  # a minor approving for themself
    )
    return cases


def hub_with_dossiers(engine: Engine, tmp_path: Path, transport: str) -> HubContext:
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )
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
            [MboInstitution(MBO, "Regio College Oost", Oin.for_brin(MBO), transport)],
        )
        cases = list(waiting_dossiers().values())
        save_students(conn, [d.student for d in cases], ctx.pseudonyms, NOW)
        save_dossiers(conn, cases, NOW)
    return ctx
