"""Registration statuses the mbo reports, and how one report meets what the hub knows.

A report (`statusmelding`, xsd/status.xsd) names the student by personal number, the vo school,
the mbo institution, the status and the moment the mbo sent it. The hub applies reports in the
mbo's own time order (`sent_at`), not in arrival order: a report older than what the hub holds
for that registration is stale and changes nothing. Anything that does not fit is a work item
for a person, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from overstap.domain.identifiers import Brin, Bsn, Crebo, Onderwijsnummer
from overstap.domain.states import REGISTRATION, RegistrationStatus


@dataclass(frozen=True, slots=True)
class StatusReport:
    message_id: str  # berichtid: one per report, so reports are idempotent one by one
    sent_at: datetime  # tijdstip: the mbo's clock orders reports
    mbo: Brin
    vo: Brin
    identifier: Bsn | Onderwijsnummer
    status: RegistrationStatus
    status_date: date
    leerlingid: str = ""
    dossier_id: str | None = None  # RelatesTo: the dossier the registration came from
    crebo: Crebo | None = None

    def __repr__(self) -> str:  # the identifier's own repr is masked; keep the rest short
        return f"StatusReport({self.message_id}, {self.mbo}, {self.status.value})"


class Outcome(StrEnum):
    APPLIED = "applied"  # the registration moved to the reported status
    SAME = "same"  # the registration already has this status (the same news twice)
    STALE = "stale"  # older than what the hub holds: out-of-order delivery, ignored
    DUPLICATE = "duplicate"  # this berichtid was processed before
    WORK_ITEM = "work_item"  # does not fit; a person looks (see WorkItemKind)


class WorkItemKind(StrEnum):
    UNKNOWN_STUDENT = "unknown_student"  # no student with this number in the hub
    WRONG_SCHOOL = "wrong_school"  # the student is known at another vo school
    NOT_APPLIED = "not_applied"  # no dossier of this student for this institution
    DOSSIER_NOT_SENT = "dossier_not_sent"  # a status for a dossier not sent yet (applied)
    DOSSIER_ELSEWHERE = "dossier_elsewhere"  # RelatesTo a dossier of another institution
    ILLEGAL_TRANSITION = "illegal_transition"  # e.g. ingeschreven back to ontvangen
    DOUBLE_ENROLMENT = "double_enrolment"  # ingeschreven at two institutions (applied anyway)


@dataclass(frozen=True, slots=True)
class Current:
    """What the hub holds for one registration (student x institution)."""

    status: RegistrationStatus
    status_at: datetime


def decide(current: Current | None, report: StatusReport) -> Outcome | WorkItemKind:
    """The effect of one matched report on its registration."""
    if current is not None:
        if report.sent_at < current.status_at:
            return Outcome.STALE
        if report.status is current.status:
            return Outcome.SAME
    if REGISTRATION.can(current.status if current else None, report.status):
        return Outcome.APPLIED
    return WorkItemKind.ILLEGAL_TRANSITION
