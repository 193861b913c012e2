"""The rule that lets a dossier leave the hub, and the student record it rests on.

DOMAIN.md: a dossier leaves only when it is complete and toestemming = Ja was given by a guardian
when the student was under 18 on the approval date, or by the student when 18 or older.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

import pytest

from overstap.domain.calendar import SchoolYear
from overstap.domain.dossier import (
    Approver,
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
    required_approver,
)
from overstap.domain.errors import InvalidRecord, InvalidTransition
from overstap.domain.identifiers import Brin, BrinVestiging, Bsn, Crebo, Gemeentecode, Postcode
from overstap.domain.states import DossierState
from overstap.domain.student import (
    SECRET_EMAIL,
    SECRET_PHONE,
    Address,
    Contact,
    Guardian,
    Level,
    Name,
    Student,
)

SCHOOL = BrinVestiging(Brin("12AB"), "00")
APPROVAL_DAY = date(2027, 3, 10)
# 17 on APPROVAL_DAY, turns 18 on 1 September 2027
MINOR_BIRTH = date(2009, 9, 1)
# 18 on APPROVAL_DAY
ADULT_BIRTH = date(2008, 11, 20)


def make_student(
    birth_date: date = MINOR_BIRTH,
    *,
    adres_geheim: bool = False,
    address: Address | None = None,
    contact: Contact | None = None,
) -> Student:
    if address is None and not adres_geheim:
        address = Address("Schoolstraat", "1", Postcode("1234AB"), "Amsterdam")
    return Student(
        leerlingid="L0001",
        school=SCHOOL,
        identifier=Bsn("111222333"),
        name=Name(voornamen="Sam", achternaam="Jansen"),
        birth_date=birth_date,
        gemeente=Gemeentecode("GM0363"),
        address=address,
        adres_geheim=adres_geheim,
        contact=contact if contact is not None else Contact("0612345678", "sam@example.org"),
        guardians=(Guardian(Name("Kim", "Jansen")),),
        level=Level.VMBO_KB,
        school_year=SchoolYear(2026),
        leaving_year=True,
        leerjaar=4,
    )


def make_inzage(
    by: Approver = Approver.GUARDIAN,
    toestemming: JaNee = JaNee.JA,
    day: date = APPROVAL_DAY,
    *,
    seen: bool = True,
) -> Inzage:
    return Inzage(
        seen=seen,
        date=day,
        by=by,
        by_name="K. Jansen",
        akkoord=JaNee.JA,
        toestemming=toestemming,
    )


def make_dossier(
    student: Student | None = None,
    inzage: Inzage | None = None,
    *,
    state: DossierState = DossierState.DEEL_B_INGEVULD,
) -> Dossier:
    """A complete dossier awaiting approval; pass `inzage` to decide who approved."""
    return Dossier(
        dossier_id="D-2027-0001",
        version=1,
        created=datetime(2027, 1, 15, 9, 30),
        student=student if student is not None else make_student(),
        receiving=Brin("34CD"),
        programme=Programme(Crebo("25180"), 2),
        state=state,
        student_part=StudentPart(motivation="Ik wil monteur worden", study_choice="Autotechniek"),
        mentor_part=MentorPart(
            advice="Past goed",
            support_needs="",
            attendance=Attendance(),
            warme_overdracht=WarmeOverdracht(needed=False),
        ),
        inzage=inzage if inzage is not None else make_inzage(),
        school_career=(SchoolCareerEntry(SchoolYear(2026), SCHOOL, Level.VMBO_KB, 4),),
        result=ExamResult(Uitslag.GESLAAGD, date(2027, 6, 12)),
    )


def rules(dossier: Dossier) -> list[str]:
    return [p.rule for p in dossier.approval_problems()]


# --- who approves ------------------------------------------------------------------------------


def test_helpers_build_a_dossier_that_may_leave() -> None:
    dossier = make_dossier()
    assert make_student().age_on(APPROVAL_DAY) == 17
    assert dossier.approval_problems() == []
    assert dossier.may_leave()
    assert dossier.sending == SCHOOL


def test_minor_needs_guardian() -> None:
    assert make_dossier(inzage=make_inzage(by=Approver.GUARDIAN)).may_leave()


def test_minor_cannot_approve_self() -> None:
    dossier = make_dossier(inzage=make_inzage(by=Approver.STUDENT))
    assert not dossier.may_leave()
    assert rules(dossier) == ["APPROVAL-PERSON"]
    assert "guardian" in str(dossier.approval_problems()[0])


def test_adult_approves_self() -> None:
    student = make_student(ADULT_BIRTH)
    assert student.age_on(APPROVAL_DAY) == 18
    assert make_dossier(student, make_inzage(by=Approver.STUDENT)).may_leave()


def test_guardian_cannot_approve_for_adult() -> None:
    dossier = make_dossier(make_student(ADULT_BIRTH), make_inzage(by=Approver.GUARDIAN))
    assert rules(dossier) == ["APPROVAL-PERSON"]
    assert "18+" in str(dossier.approval_problems()[0])


def test_eighteenth_birthday_on_approval_date_counts_as_adult() -> None:
    birth = date(2009, 3, 10)  # 18 exactly on APPROVAL_DAY
    assert required_approver(birth, APPROVAL_DAY) is Approver.STUDENT
    assert required_approver(birth, date(2027, 3, 9)) is Approver.GUARDIAN
    student = make_student(birth)
    assert make_dossier(student, make_inzage(by=Approver.STUDENT)).may_leave()
    assert rules(make_dossier(student, make_inzage(by=Approver.GUARDIAN))) == ["APPROVAL-PERSON"]
    # the day before, the guardian still had to approve
    day_before = make_inzage(by=Approver.GUARDIAN, day=date(2027, 3, 9))
    assert make_dossier(student, day_before).may_leave()


def test_leap_day_birth_turns_adult_on_1_march_in_common_year() -> None:
    birth = date(2008, 2, 29)  # 2026 is a common year
    assert required_approver(birth, date(2026, 2, 28)) is Approver.GUARDIAN
    assert required_approver(birth, date(2026, 3, 1)) is Approver.STUDENT


def test_age_is_judged_on_approval_date_not_today() -> None:
    # Approved by a guardian while 17; the student has turned 18 since: still valid.
    student = make_student(date(2009, 4, 1))
    dossier = make_dossier(student, make_inzage(by=Approver.GUARDIAN, day=date(2027, 3, 31)))
    assert dossier.may_leave()


# --- toestemming and inzage --------------------------------------------------------------------


@pytest.mark.parametrize("answer", [JaNee.NEE, JaNee.ONBEKEND])
def test_toestemming_must_be_ja(answer: JaNee) -> None:
    dossier = make_dossier(inzage=make_inzage(toestemming=answer))
    assert rules(dossier) == ["APPROVAL-TOESTEMMING"]
    problem = dossier.approval_problems()[0]
    assert problem.field == "toestemming"
    assert answer.value in str(problem)


def test_missing_inzage() -> None:
    dossier = replace(make_dossier(), inzage=None)
    assert rules(dossier) == ["APPROVAL-INZAGE"]


def test_inzage_not_seen() -> None:
    dossier = make_dossier(inzage=make_inzage(seen=False))
    assert rules(dossier) == ["APPROVAL-INZAGE"]


def test_inzage_before_dossier_created() -> None:
    dossier = make_dossier(inzage=make_inzage(day=date(2027, 1, 14)))
    assert rules(dossier) == ["APPROVAL-DATE"]
    assert make_dossier(inzage=make_inzage(day=date(2027, 1, 15))).may_leave()


# --- completeness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("student_part", "DOSSIER-PART-A"),
        ("mentor_part", "DOSSIER-PART-B"),
        ("result", "DOSSIER-RESULT"),
        ("school_career", "DOSSIER-CAREER"),
    ],
)
def test_missing_part_gives_its_rule(field: str, rule: str) -> None:
    empty: Any = () if field == "school_career" else None
    dossier = replace(make_dossier(), **{field: empty})
    assert rules(dossier) == [rule]
    assert not dossier.may_leave()


def test_promotion_satisfies_the_result_requirement() -> None:
    dossier = replace(make_dossier(), result=Promotion(bevorderd=True, datum=date(2027, 7, 1)))
    assert dossier.may_leave()


def test_approval_problems_lists_all_problems_at_once() -> None:
    dossier = replace(
        make_dossier(make_student(ADULT_BIRTH)),
        student_part=None,
        mentor_part=None,
        result=None,
        school_career=(),
        inzage=make_inzage(by=Approver.GUARDIAN, toestemming=JaNee.NEE, day=date(2027, 1, 1)),
    )
    problems = dossier.approval_problems()
    assert len(problems) == 7
    assert [p.rule for p in problems] == [
        "DOSSIER-PART-A",
        "DOSSIER-PART-B",
        "DOSSIER-RESULT",
        "DOSSIER-CAREER",
        "APPROVAL-TOESTEMMING",
        "APPROVAL-PERSON",
        "APPROVAL-DATE",
    ]
    assert all(p.record == "D-2027-0001" for p in problems)
    assert all(str(p).startswith("record D-2027-0001: ") for p in problems)


def test_approval_problems_with_missing_inzage_still_lists_missing_parts() -> None:
    dossier = replace(make_dossier(), student_part=None, inzage=None)
    assert rules(dossier) == ["DOSSIER-PART-A", "APPROVAL-INZAGE"]


def test_problem_messages_never_carry_the_bsn() -> None:
    dossier = replace(make_dossier(), student_part=None, inzage=make_inzage(by=Approver.STUDENT))
    for problem in dossier.approval_problems():
        assert "111222333" not in str(problem)


# --- moving to goedgekeurd ---------------------------------------------------------------------


def test_moved_to_goedgekeurd_when_valid() -> None:
    dossier = make_dossier()
    approved = dossier.moved_to(DossierState.GOEDGEKEURD)
    assert approved.state is DossierState.GOEDGEKEURD
    assert dossier.state is DossierState.DEEL_B_INGEVULD  # the original is untouched
    assert replace(approved, state=dossier.state) == dossier


def test_moved_to_goedgekeurd_raises_first_problem() -> None:
    dossier = replace(make_dossier(), mentor_part=None, inzage=make_inzage(by=Approver.STUDENT))
    with pytest.raises(InvalidRecord) as info:
        dossier.moved_to(DossierState.GOEDGEKEURD)
    assert info.value.rule == "DOSSIER-PART-B"
    assert info.value.record == "D-2027-0001"


def test_moved_to_goedgekeurd_refuses_wrong_approver() -> None:
    dossier = make_dossier(inzage=make_inzage(by=Approver.STUDENT))
    with pytest.raises(InvalidRecord) as info:
        dossier.moved_to(DossierState.GOEDGEKEURD)
    assert info.value.rule == "APPROVAL-PERSON"


def test_reconsidered_refusal_can_be_approved() -> None:
    dossier = make_dossier(state=DossierState.GEWEIGERD)
    assert dossier.moved_to(DossierState.GOEDGEKEURD).state is DossierState.GOEDGEKEURD


def test_moved_to_checks_the_transition_table() -> None:
    with pytest.raises(InvalidTransition):
        make_dossier(state=DossierState.CONCEPT).moved_to(DossierState.GOEDGEKEURD)
    with pytest.raises(InvalidTransition):
        make_dossier().moved_to(DossierState.VERZONDEN)


def test_moved_to_other_states_does_not_need_approval() -> None:
    dossier = replace(make_dossier(state=DossierState.CONCEPT), inzage=None, student_part=None)
    assert dossier.moved_to(DossierState.DEEL_A_INGEVULD).state is DossierState.DEEL_A_INGEVULD
    assert dossier.moved_to(DossierState.INGETROKKEN).state is DossierState.INGETROKKEN


# --- warm handover, programme ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "contact"),
    [
        ("", Contact()),
        ("", Contact(phone="0201234567")),
        ("Mevr. de Vries", Contact()),
        ("Mevr. de Vries", Contact(email="mentor@school.example")),  # OSO: a phone is required
        ("  ", Contact(phone="0201234567")),
    ],
)
def test_warme_overdracht_needed_without_contact(name: str, contact: Contact) -> None:
    with pytest.raises(InvalidRecord) as info:
        WarmeOverdracht(needed=True, contact_name=name, contact=contact)
    assert (info.value.field, info.value.rule) == ("warme_overdracht", "WARM-CONTACT")


def test_warme_overdracht_with_contact_or_not_needed() -> None:
    ok = WarmeOverdracht(True, "Mevr. de Vries", Contact(phone="0201234567"))
    assert ok.needed
    assert not WarmeOverdracht(needed=False).needed


@pytest.mark.parametrize("level", [0, 5])
def test_programme_level_1_to_4(level: int) -> None:
    with pytest.raises(InvalidRecord) as info:
        Programme(Crebo("25180"), level)
    assert info.value.rule == "PROGRAMME-LEVEL"


# --- the student record ------------------------------------------------------------------------


def test_secret_address_must_not_be_carried() -> None:
    address = Address("Geheimweg", "7", Postcode("1234AB"), "Amsterdam")
    with pytest.raises(InvalidRecord) as info:
        make_student(adres_geheim=True, address=address)
    assert (info.value.field, info.value.rule) == ("adres", "ADDRESS-SECRET")
    assert "Geheimweg" not in str(info.value)


def test_address_required_unless_secret() -> None:
    with pytest.raises(InvalidRecord) as info:
        replace(make_student(), address=None)
    assert info.value.rule == "ADDRESS-REQUIRED"


def test_shared_contact_uses_placeholders_for_secret_address() -> None:
    student = make_student(adres_geheim=True, contact=Contact("0611111111", "echt@example.org"))
    assert student.address is None
    shared = student.shared_contact
    assert shared == Contact(phone="9999999999", email="geheim@geheim.geheim")
    assert (SECRET_PHONE, SECRET_EMAIL) == ("9999999999", "geheim@geheim.geheim")


def test_shared_contact_is_own_contact_otherwise() -> None:
    contact = Contact("0611111111", "sam@example.org")
    assert make_student(contact=contact).shared_contact == contact


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"leerlingid": " "}, "STUDENT-KEY"),
        ({"leerjaar": 0}, "LEERJAAR-RANGE"),
        ({"leerjaar": 7}, "LEERJAAR-RANGE"),
        ({"birth_date": date(2026, 8, 1)}, "DATE-IMPOSSIBLE"),
    ],
)
def test_student_record_checks(changes: dict[str, Any], rule: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        replace(make_student(), **changes)
    assert info.value.rule == rule


@pytest.mark.parametrize(("voornamen", "achternaam"), [("", "Jansen"), ("Sam", "  ")])
def test_name_requires_first_and_last_name(voornamen: str, achternaam: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        Name(voornamen, achternaam)
    assert info.value.rule == "NAME-REQUIRED"


def test_student_repr_does_not_show_bsn() -> None:
    assert "111222333" not in repr(make_student())


def test_student_repr_shows_none_of_its_personal_values() -> None:
    """A student (or its name, address, contact, guardians) in a log line or traceback shows
    no personal value: not the names, birth date, address, phone, e-mail or SIS key."""
    student = make_student()
    shown = "".join(
        repr(x) for x in (student, [student], student.guardians, student.name, student.contact,
                          student.address)
    )  # fmt: skip
    values = [
        student.name.voornamen, student.name.achternaam, student.leerlingid,
        student.birth_date.isoformat(), student.contact.phone, student.contact.email,
        *(v for a in [student.address] if a for v in (a.straat, a.plaats, a.postcode.value)),
        *(g.name.achternaam for g in student.guardians),
    ]  # fmt: skip
    assert [v for v in values if v and v in shown] == []
    assert str(student.school) in repr(student)
