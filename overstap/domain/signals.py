"""Signals to municipalities (DOMAIN.md): who is in the Doorstroompunt's remit, when each of the
four rules holds for a leaving cohort, what resolves a signal, and its stable id and reason.

`evaluate` is the rules for one student in plain Python. The hub evaluates them for a whole
cohort as set-based queries (overstap.store.signals); this version is the reference those
queries are tested against (tests/integration/test_signal_rules.py), and the one a reader checks
against DOMAIN.md.

Time: a rule is evaluated "on" a day D and looks at the registration statuses known with a
status date up to a given day, each registration at its latest report in the mbo's own time
order (sent_at). So a backfill over a school year, with every status already in the store,
raises each signal on the day it would have been raised live.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from overstap.domain.calendar import SchoolCalendar, age_on
from overstap.domain.dossier import Uitslag
from overstap.domain.states import RegistrationStatus, SignalKind
from overstap.domain.student import Level

_R = RegistrationStatus

# A havo or vwo diploma is a startkwalificatie (an mbo-2 diploma too, but not in the vo cohort).
STARTKWALIFICATIE_LEVELS = frozenset({Level.HAVO, Level.VWO})
# The Doorstroompunt (RMC) follows young people under 23 without a startkwalificatie.
REMIT_AGE = 23

OPEN = frozenset({_R.ONTVANGEN, _R.OVEREENKOMST_AANGEBODEN})
REFUSED = frozenset({_R.NIET_TOT_INSCHRIJVING, _R.INGETROKKEN})
# Statuses that, held by any registration on day D, resolve a signal of the kind: a registration
# ends "no registration" and "refused, nothing else"; only an enrolment ends zomerlek and uitval.
RESOLVED_BY: dict[SignalKind, frozenset[RegistrationStatus]] = {
    SignalKind.GEEN_AANMELDING: OPEN | {_R.INGESCHREVEN},
    SignalKind.AFGEWEZEN_ZONDER_ALTERNATIEF: OPEN | {_R.INGESCHREVEN},
    SignalKind.ZOMERLEK: frozenset({_R.INGESCHREVEN}),
    SignalKind.UITVAL: frozenset({_R.INGESCHREVEN}),
}

# Signal ids are uuid5 names in this namespace (fixed: ids must be the same in every run).
_SIGNAL_NAMESPACE = uuid.UUID("5f0c6a52-3f4e-4d3e-9a57-6f7665727374")


def startkwalificatie_on(
    level: Level, uitslag: Uitslag | None, calendar: SchoolCalendar
) -> date | None:
    """The day a student of the leaving cohort has a startkwalificatie from vo, if ever."""
    if level in STARTKWALIFICATIE_LEVELS and uitslag is Uitslag.GESLAAGD:
        return calendar.diploma_date
    return None


def in_remit(birth_date: date, startkwalificatie: date | None, day: date) -> bool:
    """Whether the Doorstroompunt follows this young person on `day` (DOMAIN.md)."""
    qualified = startkwalificatie is not None and startkwalificatie <= day
    return not qualified and age_on(birth_date, day) < REMIT_AGE


def evaluation_window(calendar: SchoolCalendar) -> tuple[date, date]:
    """The days on which a cohort's signals are evaluated: from its deadline to the end of the
    first mbo year (the last day an uitval of mbo year 1 can happen)."""
    return calendar.registration_deadline, calendar.year.next().last_day


def signal_ref(subject_key: str, kind: SignalKind, calendar: SchoolCalendar) -> str:
    """The stable public id of the one signal per student, kind and school year. Built from the
    pseudonym, never the personal number; a withdrawal names it."""
    return str(uuid.uuid5(_SIGNAL_NAMESPACE, f"{subject_key}|{kind.value}|{calendar.year}"))


def reason(kind: SignalKind, signal_date: date) -> str:
    """A short factual reason made by the hub; never mentor or student text."""
    d = signal_date.isoformat()
    return {
        SignalKind.GEEN_AANMELDING: f"geen aanmelding bij een mbo-instelling op {d}",
        SignalKind.ZOMERLEK: f"aangemeld maar niet ingeschreven op {d}",
        SignalKind.UITVAL: f"uitgeschreven in het eerste mbo-jaar op {d}",
        SignalKind.AFGEWEZEN_ZONDER_ALTERNATIEF: (
            f"niet toegelaten of ingetrokken, geen andere aanmelding op {d}"
        ),
    }[kind]


WITHDRAWN_REASON = "situatie opgelost: aanmelding of inschrijving ontvangen"


@dataclass(frozen=True, slots=True)
class StatusFact:
    """One report the hub accepted for a registration (not a duplicate, not a misfit)."""

    mbo: str
    status: RegistrationStatus
    status_date: date
    sent_at: datetime
    message_id: str


@dataclass(frozen=True, slots=True)
class RegistrationView:
    """A student's registrations as known on a day, each at its latest status."""

    any: int = 0
    open: int = 0
    enrolled: int = 0
    last_out: date | None = None  # the latest deregistration (registrations now uitgeschreven)
    last_refused: date | None = None  # the latest refusal or withdrawal (now refused)


def view_as_of(history: Iterable[StatusFact], day: date) -> RegistrationView:
    latest: dict[str, StatusFact] = {}
    for fact in history:
        if fact.status_date > day:
            continue
        held = latest.get(fact.mbo)
        if held is None or (fact.sent_at, fact.message_id) > (held.sent_at, held.message_id):
            latest[fact.mbo] = fact
    facts = latest.values()
    outs = [f.status_date for f in facts if f.status is _R.UITGESCHREVEN]
    refused = [f.status_date for f in facts if f.status in REFUSED]
    return RegistrationView(
        any=len(latest),
        open=sum(f.status in OPEN for f in facts),
        enrolled=sum(f.status is _R.INGESCHREVEN for f in facts),
        last_out=max(outs, default=None),
        last_refused=max(refused, default=None),
    )


def is_resolved(kind: SignalKind, view: RegistrationView) -> bool:
    if kind in (SignalKind.ZOMERLEK, SignalKind.UITVAL):
        return view.enrolled > 0
    return view.open + view.enrolled > 0


@dataclass(frozen=True, slots=True)
class StudentFacts:
    """What the rules read about one student of the cohort."""

    birth_date: date
    leaving_year: bool
    cohort_left_on: date | None  # the school recorded that the student does not go to mbo
    startkwalificatie: date | None
    history: Sequence[StatusFact]


def evaluate(
    facts: StudentFacts, calendar: SchoolCalendar, on: date
) -> list[tuple[SignalKind, date]]:
    """The signals whose rule holds on `on`, with their signal dates: in remit on the signal
    date and not resolved on `on`."""
    first, last = evaluation_window(calendar)
    if not first <= on <= last:
        return []
    found: list[tuple[SignalKind, date]] = []
    now = view_as_of(facts.history, on)
    deadline = calendar.registration_deadline
    if (
        facts.leaving_year
        and (facts.cohort_left_on is None or facts.cohort_left_on > deadline)
        and view_as_of(facts.history, deadline).any == 0
    ):
        found.append((SignalKind.GEEN_AANMELDING, deadline))
    if on >= calendar.zomerlek_date:
        then = view_as_of(facts.history, calendar.zomerlek_date)
        if then.open > 0 and then.enrolled == 0 and then.last_out is None:
            found.append((SignalKind.ZOMERLEK, calendar.zomerlek_date))
    if now.last_out is not None and calendar.mbo_start <= now.last_out and now.enrolled == 0:
        found.append((SignalKind.UITVAL, now.last_out))
    grace = timedelta(days=calendar.afgewezen_grace_days)
    if (
        now.last_refused is not None
        and now.open == 0
        and now.enrolled == 0
        and now.last_refused + grace <= on
    ):
        found.append((SignalKind.AFGEWEZEN_ZONDER_ALTERNATIEF, now.last_refused + grace))
    return [
        (kind, day)
        for kind, day in found
        if not is_resolved(kind, now) and in_remit(facts.birth_date, facts.startkwalificatie, day)
    ]
