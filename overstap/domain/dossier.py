"""The transfer dossier (Digitaal Doorstroomdossier) and the rule that lets it leave the hub.

Rule of the hub (DOMAIN.md): a dossier leaves only when it is complete and `toestemming = Ja` was
given by a guardian when the student was under 18 on the approval date, or by the student when 18+.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from overstap.domain.calendar import SchoolYear, age_on
from overstap.domain.errors import InvalidRecord
from overstap.domain.identifiers import Brin, BrinVestiging, Crebo
from overstap.domain.states import DOSSIER, DossierState
from overstap.domain.student import Contact, Level, Student

ADULT_AGE = 18


class JaNee(StrEnum):
    """OSO code list for akkoord and toestemming."""

    JA = "Ja"
    NEE = "Nee"
    ONBEKEND = "Onbekend"


class Approver(StrEnum):
    GUARDIAN = "verzorger"
    STUDENT = "leerling"


class Uitslag(StrEnum):
    GESLAAGD = "geslaagd"
    AFGEWEZEN = "afgewezen"
    HEREXAMEN = "herexamen"


def required_approver(birth_date: date, approval_date: date) -> Approver:
    """Who must give toestemming: a guardian while the student is under 18 on that date."""
    return Approver.STUDENT if age_on(birth_date, approval_date) >= ADULT_AGE else Approver.GUARDIAN


@dataclass(frozen=True, slots=True)
class Programme:
    """The chosen mbo programme."""

    crebo: Crebo
    level: int  # mbo niveau 1-4

    def __post_init__(self) -> None:
        if self.level not in (1, 2, 3, 4):
            raise InvalidRecord("mbo level must be 1-4", field="niveau", rule="PROGRAMME-LEVEL")


@dataclass(frozen=True, slots=True)
class SchoolCareerEntry:
    school_year: SchoolYear
    school: BrinVestiging
    level: Level
    leerjaar: int


@dataclass(frozen=True, slots=True)
class ExamResult:
    uitslag: Uitslag
    datum: date


@dataclass(frozen=True, slots=True)
class Promotion:
    """`bevorderd` (OSO cat_vombo) for a student who moves on without an exam (e.g. pro, havo 3)."""

    bevorderd: bool
    datum: date


@dataclass(frozen=True, slots=True)
class StudentPart:
    """Part A: filled in by the student."""

    motivation: str
    study_choice: str
    experience: str = ""
    support_requested: str = ""


@dataclass(frozen=True, slots=True)
class Attendance:
    absent_hours: int = 0
    unauthorised_absent_hours: int = 0
    remarks: str = ""


@dataclass(frozen=True, slots=True)
class WarmeOverdracht:
    """Warm handover: when needed, the mbo calls the named contact at the vo school."""

    needed: bool
    contact_name: str = ""
    contact: Contact = field(default_factory=Contact)

    def __post_init__(self) -> None:
        # OSO OVa rule: contact person and phone when contact is needed.
        if self.needed and not (self.contact_name.strip() and self.contact.phone.strip()):
            raise InvalidRecord(
                "warm handover needs a contact person and phone",
                field="warme_overdracht",
                rule="WARM-CONTACT",
            )


@dataclass(frozen=True, slots=True)
class MentorPart:
    """Part B: filled in by the mentor."""

    advice: str
    support_needs: str
    attendance: Attendance
    warme_overdracht: WarmeOverdracht


@dataclass(frozen=True, slots=True)
class Inzage:
    """The approval block: who saw the dossier, when, and what they said."""

    seen: bool
    date: date
    by: Approver
    by_name: str
    akkoord: JaNee
    toestemming: JaNee


@dataclass(frozen=True, slots=True)
class Attachment:
    file_name: str
    media_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Dossier:
    dossier_id: str
    version: int
    created: datetime
    student: Student
    receiving: Brin
    programme: Programme
    state: DossierState = DossierState.CONCEPT
    student_part: StudentPart | None = None
    mentor_part: MentorPart | None = None
    inzage: Inzage | None = None
    school_career: tuple[SchoolCareerEntry, ...] = ()
    result: ExamResult | Promotion | None = None
    attachments: tuple[Attachment, ...] = ()

    @property
    def sending(self) -> BrinVestiging:
        return self.student.school

    def approval_problems(self) -> list[InvalidRecord]:
        """Every reason the dossier may not leave the hub yet; empty when it may."""
        problems: list[InvalidRecord] = []

        def problem(message: str, field_name: str, rule: str) -> None:
            problems.append(
                InvalidRecord(message, field=field_name, rule=rule, record=self.dossier_id)
            )

        if self.student_part is None:
            problem("student part (A) is missing", "deel_a", "DOSSIER-PART-A")
        if self.mentor_part is None:
            problem("mentor part (B) is missing", "deel_b", "DOSSIER-PART-B")
        if self.result is None:
            problem("exam result or promotion is required for VOMBO", "resultaat", "DOSSIER-RESULT")
        if not self.school_career:
            problem(
                "at least one school-career entry is required", "schoolloopbaan", "DOSSIER-CAREER"
            )
        inzage = self.inzage
        if inzage is None or not inzage.seen:
            problem("inzage was not given", "inzage", "APPROVAL-INZAGE")
            return problems
        if inzage.toestemming is not JaNee.JA:
            problem(
                f"toestemming is {inzage.toestemming}, not Ja",
                "toestemming",
                "APPROVAL-TOESTEMMING",
            )
        needed = required_approver(self.student.birth_date, inzage.date)
        if inzage.by is not needed:
            who = (
                "a guardian (student under 18)"
                if needed is Approver.GUARDIAN
                else "the student (18+)"
            )
            problem(
                f"toestemming must come from {who} on {inzage.date}",
                "toestemming",
                "APPROVAL-PERSON",
            )
        if inzage.date < self.created.date():
            problem("inzage date lies before the dossier was created", "inzage", "APPROVAL-DATE")
        return problems

    def may_leave(self) -> bool:
        return not self.approval_problems()

    def moved_to(self, target: DossierState) -> Dossier:
        """A copy in the next state; approval itself is refused unless the rule holds."""
        DOSSIER.transition(self.state, target)
        if target is DossierState.GOEDGEKEURD:
            problems = self.approval_problems()
            if problems:
                raise problems[0]
        return replace(self, state=target)
