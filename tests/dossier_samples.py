"""Representative dossiers for mapping, golden-file and pipeline tests (every person is made up).

One case per shape the issue names: a minor approved by a guardian, an adult approving for
themself, an onderwijsnummer instead of a BSN, a secret address, support needs (with an
attachment), a warm handover, and an exam result versus a promotion.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from mappings.dossier_xml import DossierEnvelope
from overstap.domain.calendar import SchoolYear
from overstap.domain.dossier import (
    Approver,
    Attachment,
    Attendance,
    Dossier,
    ExamResult,
    Inzage,
    JaNee,
    MentorPart,
    Programme,
    Promotion,
    SchoolCareerEntry,
    StudentPart,
    Uitslag,
    WarmeOverdracht,
)
from overstap.domain.identifiers import (
    Brin,
    BrinVestiging,
    Bsn,
    Crebo,
    Gemeentecode,
    Oin,
    Onderwijsnummer,
    Postcode,
)
from overstap.domain.student import Address, Contact, Guardian, Level, Name, Student

SCHOOL = BrinVestiging(Brin("12AB"), "01")
MBO = Brin("25MB")
YEAR = SchoolYear(2025)
CREATED = datetime(2026, 1, 12, 8, 45, tzinfo=UTC)
APPROVED = date(2026, 2, 3)
ENVELOPE = DossierEnvelope(
    sending_oin=Oin.for_brin(SCHOOL),
    receiving_oin=Oin.for_brin(MBO),
    sending_name="Scholengemeenschap De Horizon",
    receiving_name="Regio College Oost",
    programme_name="Medewerker ICT support",
)
# A tiny but well-formed PDF: the profile checks magic bytes, not rendering.
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def student(**changes: object) -> Student:
    base = Student(
        leerlingid="LL-1001",
        school=SCHOOL,
        identifier=Bsn("234567806"),
        name=Name(voornamen="Noor Emma", achternaam="Bakker", voorvoegsel="", roepnaam="Noor"),
        birth_date=date(2010, 3, 14),  # 15 on APPROVED
        gemeente=Gemeentecode("GM0153"),
        address=Address("Lindelaan", "12a", Postcode("7511AB"), "Enschede"),
        adres_geheim=False,
        contact=Contact(phone="0612345678", email="noor@example.org"),
        guardians=(
            Guardian(
                Name("Marieke", "Bakker"), Contact(phone="0687654321", email="m.bakker@example.org")
            ),
        ),
        level=Level.VMBO_KB,
        school_year=YEAR,
        leaving_year=True,
        leerjaar=4,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def dossier(**changes: object) -> Dossier:
    base = Dossier(
        dossier_id="DOS-2025-000001",
        version=1,
        created=CREATED,
        student=student(),
        receiving=MBO,
        programme=Programme(Crebo("25180"), 2),
        student_part=StudentPart(
            motivation="Ik wil met computers werken en mensen helpen.",
            study_choice="Medewerker ICT support, omdat ik praktisch leer.",
        ),
        mentor_part=MentorPart(
            advice="Passende keuze; werkt zelfstandig.",
            support_needs="",
            attendance=Attendance(absent_hours=14, unauthorised_absent_hours=2),
            warme_overdracht=WarmeOverdracht(needed=False),
        ),
        inzage=Inzage(
            seen=True,
            date=APPROVED,
            by=Approver.GUARDIAN,
            by_name="M. Bakker",
            akkoord=JaNee.JA,
            toestemming=JaNee.JA,
        ),
        school_career=(
            SchoolCareerEntry(SchoolYear(2024), SCHOOL, Level.VMBO_KB, 3),
            SchoolCareerEntry(YEAR, SCHOOL, Level.VMBO_KB, 4),
        ),
        result=ExamResult(Uitslag.GESLAAGD, date(2026, 6, 10)),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _adult() -> Dossier:
    adult = student(
        leerlingid="LL-1002",
        identifier=Bsn("123456009"),
        name=Name("Daan", "Visser", voorvoegsel="de"),
        birth_date=date(2007, 11, 2),  # 18 on APPROVED
        level=Level.PRO,
        guardians=(),
    )
    base = dossier(dossier_id="DOS-2025-000002", student=adult)
    return replace(
        base,
        programme=Programme(Crebo("25354"), 1),
        inzage=replace(base.inzage, by=Approver.STUDENT, by_name="D. de Visser"),  # type: ignore[type-var]
        school_career=(SchoolCareerEntry(YEAR, SCHOOL, Level.PRO, 4),),
        result=Promotion(bevorderd=True, datum=date(2026, 6, 30)),
    )


def _secret_address() -> Dossier:
    hidden = student(
        leerlingid="LL-1004",
        identifier=Bsn("987654305"),
        address=None,
        adres_geheim=True,
    )
    return dossier(dossier_id="DOS-2025-000004", student=hidden)


def _support_needs() -> Dossier:
    base = dossier(dossier_id="DOS-2025-000005", student=student(leerlingid="LL-1005"))
    return replace(
        base,
        student_part=replace(base.student_part, support_requested="Hulp bij plannen."),  # type: ignore[type-var]
        mentor_part=replace(
            base.mentor_part,  # type: ignore[type-var]
            support_needs="Structuur en een vaste contactpersoon; extra tijd bij toetsen.",
        ),
        attachments=(Attachment("ontwikkelingsperspectief.pdf", "application/pdf", PDF),),
    )


def _warm_handover() -> Dossier:
    base = dossier(dossier_id="DOS-2025-000006", student=student(leerlingid="LL-1006"))
    handover = WarmeOverdracht(
        needed=True,
        contact_name="J. Smit (mentor)",
        contact=Contact(phone="053-1234567", email="j.smit@dehorizon.example"),
    )
    return replace(
        base,
        mentor_part=replace(base.mentor_part, warme_overdracht=handover),  # type: ignore[type-var]
        result=ExamResult(Uitslag.HEREXAMEN, date(2026, 6, 10)),
    )


def golden_cases() -> dict[str, Dossier]:
    """name -> dossier; each is written to tests/golden/dossier/<name>.xml."""
    return {
        "minor_guardian_exam": dossier(),
        "adult_promotion": _adult(),
        "onderwijsnummer": dossier(
            dossier_id="DOS-2025-000003",
            student=student(leerlingid="LL-1003", identifier=Onderwijsnummer("101000000")),
        ),
        "secret_address": _secret_address(),
        "support_needs": _support_needs(),
        "warm_handover": _warm_handover(),
    }


def expected_after_round_trip(d: Dossier) -> Dossier:
    """What the XML can give back: placeholders of a secret address are not contacts."""
    if not d.student.adres_geheim:
        return d
    hidden = replace(
        d.student,
        contact=Contact(),
        guardians=tuple(replace(g, contact=Contact()) for g in d.student.guardians),
    )
    return replace(d, student=hidden)
