"""A synthetic region's school year: what its parties will send, what should come of it, and
what did. The full-cycle test and `make demo` run the year through Airflow (overstap.runtime.year)
and hold the hub's end state against `expected_year` (the scenarios' ground truth).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy import func, select

from overstap.bootstrap import HubContext
from overstap.domain.calendar import SchoolCalendar
from overstap.domain.registration import StatusReport
from overstap.region import iter_students, load_region
from overstap.services.reports import furthest, school_report
from overstap.store.tables import outbox, signal


def year_of_statuses(region_dir: Path, prefix: str) -> list[StatusReport]:
    """Every status the scenarios hold, in region order, as the institutions will report them.
    Message ids are opaque counters, like a real MessageID (they land in the audit trail); the
    mbo's clock keeps a day's events in the scenario's order."""
    reports: list[StatusReport] = []
    for record in iter_students(region_dir):
        s = record.student
        for n, event in enumerate(record.scenario.status_dates):
            reports.append(
                StatusReport(
                    message_id=f"{prefix}-{len(reports)}",
                    sent_at=datetime.combine(event.date, time(12, 0, n), tzinfo=UTC),
                    mbo=event.brin,
                    vo=s.school.brin,
                    identifier=s.identifier,
                    status=event.status,
                    status_date=event.date,
                    leerlingid=s.leerlingid,
                )
            )
    return reports


def milestones(calendar: SchoolCalendar, last_event: date) -> list[date]:
    """The days the year is run on: the first of every month of the school year (the SIS pull
    on the first), the deadline and the zomerlek date, then every quarter until the last event
    of the first mbo year has passed."""
    days = {calendar.registration_deadline, calendar.zomerlek_date}
    day = date(calendar.year.start_year, 10, 1)  # SIS exports are complete once classes settle
    while day <= calendar.zomerlek_date:
        days.add(day)
        day = _add_months(day, 1)
    day = _add_months(date(calendar.zomerlek_date.year, calendar.zomerlek_date.month, 1), 3)
    while True:
        days.add(day)
        if day > last_event:
            break
        day = _add_months(day, 3)
    return sorted(days)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


@dataclass
class YearOutcome:
    """Standing per leaving-year student, signals per municipality: expected or observed."""

    standings: dict[tuple[str, str], str] = field(default_factory=dict)  # (school, leerlingid)
    signals: Counter[tuple[str, str]] = field(default_factory=Counter)  # (gemeente, kind)

    def standing_counts(self) -> Counter[str]:
        return Counter(self.standings.values())

    def signals_per_municipality(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (gemeente, _), n in self.signals.items():
            out[gemeente] += n
        return out

    def differences(self, other: YearOutcome) -> list[str]:
        """What differs, counted per school and per municipality: a report line names no
        student, not even by the school's own key."""
        per_school: Counter[tuple[str, str | None, str | None]] = Counter()
        for key in self.standings.keys() | other.standings.keys():
            here, there = self.standings.get(key), other.standings.get(key)
            if here != there:
                per_school[key[0], here, there] += 1
        found = [
            f"school {school}: {n} student(s) {here} here, {there} there"
            for (school, here, there), n in sorted(per_school.items(), key=str)
        ]
        found += [
            f"signals {gemeente} {kind}: {self.signals[gemeente, kind]} here, "
            f"{other.signals[gemeente, kind]} there"
            for gemeente, kind in sorted(self.signals.keys() | other.signals.keys())
            if self.signals[gemeente, kind] != other.signals[gemeente, kind]
        ]
        return found


def expected_year(region_dir: Path, until: date) -> YearOutcome:
    """The ground truth of the region's scenarios, for signals dated up to `until`."""
    outcome = YearOutcome()
    for record in iter_students(region_dir):
        s = record.student
        if s.leaving_year:
            final = {str(e.brin): e.status.value for e in record.scenario.status_dates}
            outcome.standings[str(s.school), s.leerlingid] = furthest(final.values())
        for e in record.scenario.expected_signals:
            if e.date <= until:
                outcome.signals[str(e.gemeente), e.kind.value] += 1
    return outcome


def observed_year(ctx: HubContext, region_dir: Path) -> YearOutcome:
    """What the hub holds: every school's report, and the signals it delivered."""
    outcome = YearOutcome()
    for school in load_region(region_dir).vo_schools:
        for line in school_report(ctx, str(school.location)):
            outcome.standings[str(school.location), line.leerlingid] = line.standing
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(signal.c.gemeente, signal.c.kind, func.count())
            .where(signal.c.state == "delivered")
            .group_by(signal.c.gemeente, signal.c.kind)
        )
        for gemeente, kind, n in rows:
            outcome.signals[gemeente, kind] = n
    return outcome


def deliveries_per_channel(ctx: HubContext) -> dict[tuple[str, str, str], int]:
    """(kind, transport, state) -> messages, from the outbox and the routes."""
    from overstap.store.tables import delivery_route, municipality_route

    with ctx.engine.connect() as conn:
        transport = {r.brin: r.transport for r in conn.execute(select(delivery_route))}
        transport |= {r.gemeente: r.transport for r in conn.execute(select(municipality_route))}
        rows = conn.execute(
            select(outbox.c.kind, outbox.c.recipient, outbox.c.state, func.count()).group_by(
                outbox.c.kind, outbox.c.recipient, outbox.c.state
            )
        )
        out: Counter[tuple[str, str, str]] = Counter()
        for kind, recipient, state, n in rows:
            out[kind, transport.get(recipient, "?"), state] += n
    return dict(out)


def statuses_between(
    reports: list[StatusReport], after: date | None, until: date
) -> Iterator[StatusReport]:
    for r in reports:
        if (after is None or r.status_date > after) and r.status_date <= until:
            yield r
