"""The school year (1 August - 31 July) and its dates that drive signals.

The registration deadline (WEB art. 8.0.1, 1 April; it was 1 May in 2020), the zomerlek date
(after the summer; default 1 October, the DUO count date), the grace period after a refusal and
the day diplomas count are configurable per school year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Self

from overstap.domain.errors import InvalidRecord


@dataclass(frozen=True, slots=True, order=True)
class SchoolYear:
    """A school year named by the calendar year it starts in: 2026 is `2026-2027`."""

    start_year: int

    @classmethod
    def parse(cls, text: str) -> Self:
        m = re.fullmatch(r"([0-9]{4})-([0-9]{4})", text.strip())
        if not m or int(m.group(2)) != int(m.group(1)) + 1:
            raise InvalidRecord(
                f"{text!r} is not NNNN-NNNN with consecutive years",
                field="schooljaar",
                rule="SCHOOLYEAR-FORMAT",
            )
        return cls(int(m.group(1)))

    @classmethod
    def containing(cls, day: date) -> Self:
        return cls(day.year if day.month >= 8 else day.year - 1)

    @property
    def first_day(self) -> date:
        return date(self.start_year, 8, 1)

    @property
    def last_day(self) -> date:
        return date(self.start_year + 1, 7, 31)

    def next(self) -> SchoolYear:
        return SchoolYear(self.start_year + 1)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first_day <= day <= self.last_day

    def __str__(self) -> str:
        return f"{self.start_year}-{self.start_year + 1}"


@dataclass(frozen=True, slots=True)
class SchoolCalendar:
    """The dates of one leaving cohort: students leaving vo at the end of `year`.

    `registration_deadline` falls inside `year` (default 1 April); `zomerlek_date` falls after the
    summer, in the next school year, when the mbo year has begun (default 1 October).
    """

    year: SchoolYear
    registration_deadline: date = field(default=date.min)
    zomerlek_date: date = field(default=date.min)
    # Days after a refusal or withdrawal before `afgewezen_zonder_alternatief` is raised.
    afgewezen_grace_days: int = 30
    # From this day the leaving year's havo and vwo diplomas count (results day and re-sits are
    # over; default 1 July): a startkwalificatie takes a young person out of the Doorstroompunt's
    # remit, so no signal concerns them from then on.
    diploma_date: date = field(default=date.min)

    def __post_init__(self) -> None:
        # frozen dataclass: defaults that depend on `year` are filled in through object.__setattr__
        if self.registration_deadline == date.min:
            object.__setattr__(self, "registration_deadline", date(self.year.start_year + 1, 4, 1))
        if self.zomerlek_date == date.min:
            object.__setattr__(self, "zomerlek_date", date(self.year.start_year + 1, 10, 1))
        if self.diploma_date == date.min:
            object.__setattr__(self, "diploma_date", date(self.year.start_year + 1, 7, 1))
        if self.registration_deadline not in self.year:
            raise InvalidRecord(
                f"deadline {self.registration_deadline} lies outside school year {self.year}",
                field="registration_deadline",
                rule="CALENDAR-DEADLINE",
            )
        if not self.mbo_start <= self.zomerlek_date <= self.year.next().last_day:
            raise InvalidRecord(
                f"zomerlek date {self.zomerlek_date} must fall in school year {self.year.next()}, "
                "when the mbo year has begun",
                field="zomerlek_date",
                rule="CALENDAR-ZOMERLEK",
            )
        if self.afgewezen_grace_days < 0:
            raise InvalidRecord(
                "grace period must not be negative",
                field="afgewezen_grace_days",
                rule="CALENDAR-GRACE",
            )
        if self.diploma_date not in self.year:
            raise InvalidRecord(
                f"diploma date {self.diploma_date} lies outside school year {self.year}",
                field="diploma_date",
                rule="CALENDAR-DIPLOMA",
            )

    @property
    def mbo_start(self) -> date:
        """The mbo year starts on 1 August after the leaving year."""
        return self.year.next().first_day

    def grace_ends(self, refused_on: date) -> date:
        return refused_on + timedelta(days=self.afgewezen_grace_days)


def age_on(birth_date: date, day: date) -> int:
    """Age in whole years on `day`.

    Someone born on 29 February counts as a year older from 1 March in a common year: the later
    of the two candidate dates, so a guardian keeps approving until the student is surely 18.
    """
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years
