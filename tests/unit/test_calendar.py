"""The school year (1 August - 31 July), the dates that drive signals, and age on a date."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from overstap.domain.calendar import SchoolCalendar, SchoolYear, age_on
from overstap.domain.errors import InvalidRecord

# --- SchoolYear --------------------------------------------------------------------------------


def test_school_year_parse_and_str() -> None:
    year = SchoolYear.parse("2026-2027")
    assert year == SchoolYear(2026)
    assert str(year) == "2026-2027"
    assert SchoolYear.parse(" 2019-2020 ").start_year == 2019


@pytest.mark.parametrize(
    "text", ["2026-2028", "2026-2026", "2027-2026", "26-27", "2026/2027", "2026", "2026-2027x", ""]
)
def test_school_year_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        SchoolYear.parse(text)
    assert (info.value.field, info.value.rule) == ("schooljaar", "SCHOOLYEAR-FORMAT")


def test_school_year_bounds() -> None:
    year = SchoolYear(2026)
    assert year.first_day == date(2026, 8, 1)
    assert year.last_day == date(2027, 7, 31)
    assert year.next() == SchoolYear(2027)
    assert SchoolYear(2025) < SchoolYear(2026)


@pytest.mark.parametrize(
    ("day", "start_year"),
    [
        (date(2027, 7, 31), 2026),
        (date(2027, 8, 1), 2027),
        (date(2026, 7, 31), 2025),
        (date(2026, 8, 1), 2026),
        (date(2027, 1, 1), 2026),
        (date(2026, 12, 31), 2026),
    ],
)
def test_school_year_containing_at_boundaries(day: date, start_year: int) -> None:
    assert SchoolYear.containing(day) == SchoolYear(start_year)


def test_school_year_contains() -> None:
    year = SchoolYear(2026)
    assert date(2026, 8, 1) in year
    assert date(2027, 7, 31) in year
    assert date(2026, 7, 31) not in year
    assert date(2027, 8, 1) not in year
    assert "2026-09-01" not in year  # not a date


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)))
def test_property_containing_contains_the_day(day: date) -> None:
    year = SchoolYear.containing(day)
    assert day in year
    assert day not in year.next()
    assert (year.last_day - year.first_day).days in (364, 365)


# --- SchoolCalendar ------------------------------------------------------------------------------


def test_calendar_defaults() -> None:
    cal = SchoolCalendar(SchoolYear(2026))
    assert cal.registration_deadline == date(2027, 4, 1)
    assert cal.zomerlek_date == date(2027, 10, 1)
    assert cal.mbo_start == date(2027, 8, 1)
    assert cal.afgewezen_grace_days == 30
    assert cal.grace_ends(date(2027, 5, 10)) == date(2027, 6, 9)


def test_calendar_overridden_deadline_like_2020() -> None:
    # In 2020 the deadline was 1 May (school year 2019-2020).
    cal = SchoolCalendar(SchoolYear(2019), registration_deadline=date(2020, 5, 1))
    assert cal.registration_deadline == date(2020, 5, 1)
    assert cal.zomerlek_date == date(2020, 10, 1)


def test_calendar_overridden_zomerlek_date() -> None:
    cal = SchoolCalendar(SchoolYear(2026), zomerlek_date=date(2027, 9, 15))
    assert cal.zomerlek_date == date(2027, 9, 15)
    assert cal.registration_deadline == date(2027, 4, 1)


@pytest.mark.parametrize(
    "deadline",
    [date(2026, 7, 31), date(2027, 8, 1), date(2028, 4, 1), date(2026, 4, 1)],
)
def test_calendar_rejects_deadline_outside_school_year(deadline: date) -> None:
    with pytest.raises(InvalidRecord) as info:
        SchoolCalendar(SchoolYear(2026), registration_deadline=deadline)
    assert (info.value.field, info.value.rule) == ("registration_deadline", "CALENDAR-DEADLINE")


def test_calendar_accepts_deadline_on_year_edges() -> None:
    assert SchoolCalendar(SchoolYear(2026), registration_deadline=date(2026, 8, 1))
    assert SchoolCalendar(SchoolYear(2026), registration_deadline=date(2027, 7, 31))


@pytest.mark.parametrize(
    ("deadline", "zomerlek"),
    [
        (date(2027, 4, 1), date(2027, 3, 1)),  # before the deadline
        (date(2027, 4, 1), date(2027, 4, 1)),  # on the deadline
        (date(2027, 4, 1), date(2028, 8, 1)),  # after the next school year
    ],
)
def test_calendar_rejects_bad_zomerlek_date(deadline: date, zomerlek: date) -> None:
    with pytest.raises(InvalidRecord) as info:
        SchoolCalendar(SchoolYear(2026), registration_deadline=deadline, zomerlek_date=zomerlek)
    assert (info.value.field, info.value.rule) == ("zomerlek_date", "CALENDAR-ZOMERLEK")


@pytest.mark.parametrize("zomerlek", [date(2027, 6, 1), date(2027, 7, 31)])
def test_calendar_rejects_zomerlek_date_before_the_mbo_year(zomerlek: date) -> None:
    """The class docstring: the zomerlek date "falls after the summer, in the next school year,
    when the mbo year has begun"; the error message says "within school year 2027-2028".
    A date after the deadline but still in the leaving year is neither."""
    with pytest.raises(InvalidRecord) as info:
        SchoolCalendar(SchoolYear(2026), zomerlek_date=zomerlek)
    assert info.value.rule == "CALENDAR-ZOMERLEK"


def test_calendar_zomerlek_on_first_day_of_mbo_year_is_accepted() -> None:
    cal = SchoolCalendar(SchoolYear(2026), zomerlek_date=date(2027, 8, 1))
    assert cal.zomerlek_date == cal.mbo_start


def test_calendar_zomerlek_on_last_day_of_next_year_is_accepted() -> None:
    cal = SchoolCalendar(SchoolYear(2026), zomerlek_date=date(2028, 7, 31))
    assert cal.zomerlek_date == date(2028, 7, 31)


def test_calendar_rejects_negative_grace() -> None:
    with pytest.raises(InvalidRecord) as info:
        SchoolCalendar(SchoolYear(2026), afgewezen_grace_days=-1)
    assert info.value.rule == "CALENDAR-GRACE"
    assert SchoolCalendar(SchoolYear(2026), afgewezen_grace_days=0).grace_ends(
        date(2027, 5, 1)
    ) == date(2027, 5, 1)


# --- age_on ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (date(2009, 5, 10), date(2027, 5, 9), 17),
        (date(2009, 5, 10), date(2027, 5, 10), 18),  # birthday itself counts
        (date(2009, 5, 10), date(2027, 5, 11), 18),
        (date(2009, 12, 31), date(2027, 1, 1), 17),
        (date(2009, 1, 1), date(2026, 12, 31), 17),
        (date(2009, 1, 1), date(2009, 1, 1), 0),
    ],
)
def test_age_on(birth: date, day: date, age: int) -> None:
    assert age_on(birth, day) == age


@pytest.mark.parametrize(
    ("day", "age"),
    [
        (date(2026, 2, 28), 17),  # common year: not yet on 28 February
        (date(2026, 3, 1), 18),  # common year: older from 1 March
        (date(2028, 2, 28), 19),
        (date(2028, 2, 29), 20),  # leap year: on the birthday itself
    ],
)
def test_age_on_29_february_birthday(day: date, age: int) -> None:
    assert age_on(date(2008, 2, 29), day) == age


@given(
    st.dates(min_value=date(1990, 1, 1), max_value=date(2020, 12, 31)),
    st.integers(min_value=0, max_value=30),
)
def test_property_age_increases_by_one_exactly_on_the_birthday(birth: date, years: int) -> None:
    # The n-th birthday; 29 February falls back to 1 March in a common year.
    try:
        birthday = birth.replace(year=birth.year + years)
    except ValueError:
        birthday = date(birth.year + years, 3, 1)
    assert age_on(birth, birthday) == years
    if years:
        assert age_on(birth, birthday - timedelta(days=1)) == years - 1


def test_diploma_date_defaults_to_1_july_and_must_lie_in_the_school_year() -> None:
    year = SchoolYear(2026)
    assert SchoolCalendar(year).diploma_date == date(2027, 7, 1)
    for bad in (date(2026, 7, 31), date(2027, 8, 1)):
        with pytest.raises(InvalidRecord) as info:
            SchoolCalendar(year, diploma_date=bad)
        assert (info.value.field, info.value.rule) == ("diploma_date", "CALENDAR-DIPLOMA")
