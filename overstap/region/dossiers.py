"""The transfer dossier a synthetic student's school would compose, from the region's scenario.

In production parts A and B come from the school's systems (the SIS's LOB module or a DDD form);
in a synthetic region the scenario says what the year holds (programme, support needs, warm
handover, who approved and when, exam or promotion) and this module writes the rest: short,
plausible texts picked deterministically from the student's key, so the same region always
yields the same dossiers.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime, time

from overstap.domain.calendar import SchoolYear
from overstap.domain.dossier import (
    Approver,
    Attendance,
    Dossier,
    ExamResult,
    Inzage,
    JaNee,
    MentorPart,
    Promotion,
    SchoolCareerEntry,
    StudentPart,
    WarmeOverdracht,
)
from overstap.domain.states import DossierState
from overstap.domain.student import Contact, Level, Student
from overstap.region.model import Region, StudentRecord

# A fixed namespace: dossier ids are stable across runs and machines, and carry no personal data.
_DOSSIER_NAMESPACE = uuid.UUID("6f1d3f0e-2b7c-5d7e-9a51-0c3e8f7b2d10")

_MOTIVATIONS = (
    "Ik wil graag met mijn handen werken en iets maken wat je kunt zien.",
    "Ik help graag mensen en wil dat later ook in mijn werk doen.",
    "Tijdens mijn stage merkte ik dat dit vak echt bij mij past.",
    "Ik wil een vak leren waarmee ik snel aan het werk kan.",
    "Ik ben nieuwsgierig naar techniek en wil weten hoe dingen werken.",
)
_CHOICES = (
    "Ik heb open dagen bezocht en meegelopen; deze opleiding sprak me het meest aan.",
    "Mijn keuze past bij mijn profiel en bij wat ik in de praktijk wil doen.",
    "Na gesprekken met mijn mentor en decaan heb ik voor deze richting gekozen.",
)
_EXPERIENCE = (
    "Bijbaan in een supermarkt.",
    "Snuffelstage bij een garage.",
    "Vrijwilliger bij de sportvereniging.",
    "",
)
_ADVICE = (
    "Passende keuze; werkt zelfstandig en is gemotiveerd.",
    "Goede keuze; heeft baat bij duidelijke afspraken in het eerste jaar.",
    "Passende keuze; praktisch ingesteld en sociaal vaardig.",
)

# Created before the approval window of the generator opens (1 December).
_CREATED_MONTH_DAY = (11, 15)


def _pick(options: tuple[str, ...], key: str, salt: str) -> str:
    digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=4).digest()
    return options[int.from_bytes(digest, "big") % len(options)]


def dossier_id_for(student: Student, receiving: str, year: SchoolYear) -> str:
    """Stable per student, institution and year; the hash hides the leerlingid."""
    name = f"{student.school}/{student.leerlingid}/{receiving}/{year}"
    return f"DOS-{year.start_year}-{uuid.uuid5(_DOSSIER_NAMESPACE, name).hex[:20]}"


def _career(student: Student) -> tuple[SchoolCareerEntry, ...]:
    year = student.school_year
    entries = [SchoolCareerEntry(year, student.school, student.level, student.leerjaar)]
    if student.leerjaar > 1:
        # The year before at the same school; a vmbo switcher's history is out of scope here.
        entries.insert(
            0,
            SchoolCareerEntry(
                SchoolYear(year.start_year - 1), student.school, student.level, student.leerjaar - 1
            ),
        )
    return tuple(entries)


def _result(record: StudentRecord) -> ExamResult | Promotion | None:
    scenario = record.scenario
    y1 = record.student.school_year.start_year + 1
    if scenario.exam is not None:
        return ExamResult(scenario.exam, date(y1, 6, 10))
    if scenario.bevorderd is not None:
        return Promotion(scenario.bevorderd, date(y1, 6, 30))
    return None


def _inzage(record: StudentRecord) -> Inzage | None:
    approval = record.scenario.approval
    if approval is None or approval.by is None:
        return None  # nobody answered: the dossier stays in the hub
    student = record.student
    if approval.by is Approver.GUARDIAN and student.guardians:
        name = student.guardians[0].name
    else:
        name = student.name
    initial = name.voornamen.split()[0][0]
    surname = f"{name.voorvoegsel} {name.achternaam}".strip()
    return Inzage(
        seen=True,
        date=approval.date,
        by=approval.by,
        by_name=f"{initial}. {surname}",
        akkoord=JaNee.JA,
        toestemming=approval.toestemming,
    )


def scenario_dossier(record: StudentRecord, region: Region) -> Dossier | None:
    """The dossier for the first-choice institution, or None when the student does not apply."""
    scenario = record.scenario
    student = record.student
    if scenario.applies_to is None or scenario.programme is None:
        return None
    year = student.school_year
    key = f"{student.school}/{student.leerlingid}"
    school = region.vo_school(student.school)
    school_name = school.name if school is not None else str(student.school)
    warm = WarmeOverdracht(
        needed=scenario.warme_overdracht,
        contact_name=f"Mentor leerjaar {student.leerjaar}, {school_name}",
        contact=Contact(phone="0" + str(student.school.brin)[:2] + "-5550100"),
    )
    support = scenario.support_needs
    pro_like = student.level in (Level.PRO, Level.VSO)
    return Dossier(
        dossier_id=dossier_id_for(student, str(scenario.applies_to), year),
        version=1,
        created=datetime.combine(
            date(year.start_year, *_CREATED_MONTH_DAY), time(9, 0), tzinfo=UTC
        ),
        student=student,
        receiving=scenario.applies_to,
        programme=scenario.programme,
        state=DossierState.DEEL_B_INGEVULD,  # both parts are filled in; approval comes next
        student_part=StudentPart(
            motivation=_pick(_MOTIVATIONS, key, "motivatie"),
            study_choice=_pick(_CHOICES, key, "studiekeuze"),
            experience=_pick(_EXPERIENCE, key, "ervaring"),
            support_requested="Hulp bij plannen." if support and pro_like else "",
        ),
        mentor_part=MentorPart(
            advice=_pick(_ADVICE, key, "advies"),
            support_needs=support,
            attendance=Attendance(
                absent_hours=int(key.encode()[-1]) % 40, unauthorised_absent_hours=0
            ),
            warme_overdracht=warm,
        ),
        inzage=_inzage(record),
        school_career=_career(student),
        result=_result(record),
    )
