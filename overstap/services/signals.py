"""Raise and withdraw signals on a given day: the rules, the remit, the routing, the lifecycle.

On day D every leaving cohort whose evaluation window holds D (at most two: last year's
summer and this year's deadline) is evaluated with the set-based rules of
overstap.store.signals. A candidate becomes a signal when the young person is in the
Doorstroompunt's remit on the signal date (under 23, no startkwalificatie); it goes to the
municipality of residence on the signal date. A signal whose situation resolved is withdrawn.
At most one signal per student, kind and school year, ever: a withdrawn signal is not raised
again. Every raise and withdrawal is an audit record, in the transaction that makes it.

`plan_signals` says what `run_signals` would do, without writing. Delivery of the signal files
is a separate step (the outbox), so a run never waits on a municipality.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, update

from overstap.audit.chain import AuditEvent
from overstap.batching import chunks, fewer_collections
from overstap.bootstrap import HubContext
from overstap.domain.calendar import SchoolCalendar, SchoolYear
from overstap.domain.signals import (
    WITHDRAWN_REASON,
    evaluation_window,
    in_remit,
    reason,
    signal_ref,
)
from overstap.domain.states import SIGNAL, SignalKind, SignalState
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.bulk import bulk_insert
from overstap.store.signals import (
    Candidate,
    Resolved,
    calendar_for,
    evaluate_cohort,
    living_in,
    refresh_statistics,
    regions_of,
    residences,
)
from overstap.store.tables import signal

ACTOR = "overstap signals"


@dataclass(frozen=True, slots=True)
class PlannedSignal:
    signal_ref: str
    student_id: int
    subject_key: str
    kind: SignalKind
    school_year: str
    signal_date: date
    gemeente: str
    regio: str | None
    reason: str


@dataclass
class SignalPlan:
    """What a run on `on` raises and withdraws; counts and ids only outside the store."""

    on: date
    cohorts: list[str] = field(default_factory=list)
    raises: list[PlannedSignal] = field(default_factory=list)
    withdrawals: list[Resolved] = field(default_factory=list)
    out_of_remit: Counter[str] = field(default_factory=Counter)  # kind -> candidates skipped

    def per_municipality(self) -> dict[str, Counter[str]]:
        """gemeente -> counts of raised kinds and of withdrawals ("intrekking")."""
        table: dict[str, Counter[str]] = {}
        for s in self.raises:
            table.setdefault(s.gemeente, Counter())[s.kind.value] += 1
        for w in self.withdrawals:
            table.setdefault(w.gemeente, Counter())["intrekking"] += 1
        return dict(sorted(table.items()))

    def counts(self) -> dict[str, object]:
        return {
            "on": self.on.isoformat(),
            "cohorts": self.cohorts,
            "raised": len(self.raises),
            "withdrawn": len(self.withdrawals),
            "out_of_remit": dict(self.out_of_remit),
        }


def cohorts_on(conn: Connection, on: date) -> list[SchoolCalendar]:
    """The leaving cohorts whose signals are evaluated on `on`."""
    current = SchoolYear.containing(on)
    found = []
    for year in (SchoolYear(current.start_year - 1), current):
        calendar = calendar_for(conn, year)
        first, last = evaluation_window(calendar)
        if first <= on <= last:
            found.append(calendar)
    return found


def _plan(conn: Connection, on: date) -> SignalPlan:
    refresh_statistics(conn)
    plan = SignalPlan(on)
    regions = regions_of(conn)
    for calendar in cohorts_on(conn, on):
        plan.cohorts.append(str(calendar.year))
        found, withdrawn = evaluate_cohort(conn, calendar, on)
        grace = timedelta(days=calendar.afgewezen_grace_days)
        eligible: list[tuple[Candidate, date]] = []
        for c in found:
            day = (
                c.base_date + grace
                if c.kind is SignalKind.AFGEWEZEN_ZONDER_ALTERNATIEF
                else c.base_date
            )
            if in_remit(c.birth_date, c.startkwalificatie, day):
                eligible.append((c, day))
            else:
                plan.out_of_remit[c.kind.value] += 1
        history = residences(conn, sorted({c.student_id for c, _ in eligible}))
        for c, day in eligible:
            gemeente = living_in(history.get(c.student_id, ()), c.gemeente, day)
            plan.raises.append(
                PlannedSignal(
                    signal_ref(c.subject_key, c.kind, calendar),
                    c.student_id,
                    c.subject_key,
                    c.kind,
                    str(calendar.year),
                    day,
                    gemeente,
                    regions.get(gemeente),
                    reason(c.kind, day),
                )
            )
        plan.withdrawals.extend(withdrawn)
    return plan


def plan_signals(ctx: HubContext, on: date) -> SignalPlan:
    """What `run_signals(ctx, on)` would raise and withdraw now; writes nothing."""
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        return _plan(conn, on)


@fewer_collections()
def run_signals(ctx: HubContext, on: date, *, now: datetime | None = None) -> SignalPlan:
    """Raise and withdraw, in one transaction with their audit records."""
    moment = now or datetime.now(UTC)
    raised = SIGNAL.transition(None, SignalState.RAISED).value
    origin = f"signals:{on.isoformat()}"
    with ctx.engine.begin() as conn:
        plan = _plan(conn, on)
        log = AuditLog(conn, fixed_clock(moment))
        # In slices: the rows and audit records of a day's 45,000 signals (1,000,000 students)
        # need not all exist at once.
        for part in chunks(plan.raises, 5000):
            bulk_insert(
                conn,
                signal,
                [
                    {
                        "signal_ref": s.signal_ref,
                        "student_id": s.student_id,
                        "kind": s.kind.value,
                        "school_year": s.school_year,
                        "state": raised,
                        "gemeente": s.gemeente,
                        "regio": s.regio,
                        "signal_date": s.signal_date,
                        "raised_on": on,
                        "reason": s.reason,
                        "withdrawn_on": None,
                        "withdraw_reason": None,
                        "file_id": None,
                        "withdrawal_file_id": None,
                        "updated_at": moment,
                    }
                    for s in part
                ],
            )
            log.append_many(
                _event("signal.raised", s.signal_ref, origin, s.subject_key, s.kind, s.gemeente,
                       school_year=s.school_year, signal_date=s.signal_date.isoformat())
                for s in part
            )  # fmt: skip
        for w in plan.withdrawals:
            SIGNAL.transition(w.state, SignalState.WITHDRAWN)  # InvalidTransition: a bug
            conn.execute(
                update(signal)
                .where(signal.c.id == w.signal_id)
                .values(
                    state=SignalState.WITHDRAWN.value,
                    withdrawn_on=on,
                    withdraw_reason=WITHDRAWN_REASON,
                    updated_at=moment,
                )
            )
        log.append_many(
            _event("signal.withdrawn", w.signal_ref, origin, w.subject_key, w.kind, w.gemeente,
                   was=w.state.value)
            for w in plan.withdrawals
        )  # fmt: skip
    return plan


def _event(
    action: str,
    ref: str,
    origin: str,
    subject: str,
    kind: SignalKind,
    gemeente: str,
    **detail: str,
) -> AuditEvent:
    """A signal's audit record: its public id, the pseudonym, never a personal number."""
    return AuditEvent(
        ACTOR,
        action,
        "signal",
        ref,
        origin=origin,
        detail={"subject": subject, "kind": kind.value, "gemeente": gemeente, **detail},
    )
