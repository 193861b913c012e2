"""Student upserts on both backends: idempotent, keyed by school + leerlingid, changes named."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from overstap.audit.pseudonym import Pseudonymizer
from overstap.domain.calendar import SchoolYear
from overstap.domain.identifiers import (
    Brin,
    BrinVestiging,
    Bsn,
    Gemeentecode,
    Oin,
    Postcode,
    RegionCode,
)
from overstap.domain.parties import DoorstroompuntRegion, MboInstitution, Municipality, VoSchool
from overstap.domain.student import Address, Contact, Guardian, Level, Name, Student
from overstap.store.students import save_parties, save_students
from overstap.store.tables import student

KEY = bytes(32)
NOW = datetime(2026, 10, 1, 12, tzinfo=UTC)
SCHOOL = BrinVestiging(Brin("12AB"), "00")


def _bsn(i: int) -> str:
    """The i-th valid BSN above a base: computed, so the fixture cannot drift from the rule."""
    from overstap.domain.identifiers import elfproef_remainder

    n = 100000000 + i * 97
    while True:
        s = f"{n:09d}"
        if elfproef_remainder(s) == 0:
            return s
        n += 1


def _student(i: int, **changes: object) -> Student:
    s = Student(
        leerlingid=f"L{i:05d}",
        school=SCHOOL,
        identifier=Bsn(_bsn(i)),
        name=Name("Anna Maria", "Jansen", roepnaam="Anna"),
        birth_date=date(2010, 3, 14),
        gemeente=Gemeentecode("GM0363"),
        address=Address("Dorpsstraat", "1a", Postcode("1234AB"), "Amsterdam"),
        adres_geheim=False,
        contact=Contact("0612345678", "anna@example.org"),
        guardians=(Guardian(Name("Piet", "Jansen")),),
        level=Level.VMBO_KB,
        school_year=SchoolYear(2026),
        leaving_year=True,
        leerjaar=4,
    )
    return replace(s, **changes)  # type: ignore[arg-type]


def _parties(engine: Engine) -> None:
    with engine.begin() as conn:
        save_parties(
            conn,
            [DoorstroompuntRegion(RegionCode("MC17"), "Amsterdam", Gemeentecode("GM0363"))],
            [
                Municipality(
                    Gemeentecode("GM0363"),
                    "Amsterdam",
                    RegionCode("MC17"),
                    Oin("00000001002564440000"),
                )
            ],
            [
                VoSchool(
                    SCHOOL, "Het Lyceum", Oin.for_brin(SCHOOL), Gemeentecode("GM0363"), "magister"
                )
            ],
            [MboInstitution(Brin("25XY"), "ROC", Oin.for_brin(Brin("25XY")), "soap")],
        )


def test_second_run_changes_nothing(engine: Engine) -> None:
    _parties(engine)
    _parties(engine)  # parties are idempotent too
    pseudo = Pseudonymizer(KEY)
    batch = [_student(i) for i in range(50)]
    with engine.begin() as conn:
        first = save_students(conn, batch, pseudo, NOW)
    with engine.begin() as conn:
        second = save_students(conn, batch, pseudo, NOW)
    assert (first.created, first.updated, first.unchanged) == (50, 0, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 50)
    assert second.changes == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(student)).scalar_one() == 50


def test_a_move_is_an_update_that_names_fields_not_values(engine: Engine) -> None:
    _parties(engine)
    pseudo = Pseudonymizer(KEY)
    with engine.begin() as conn:
        save_students(conn, [_student(1), _student(2)], pseudo, NOW)
    moved = _student(
        1,
        gemeente=Gemeentecode("GM0599"),
        address=Address("Coolsingel", "40", Postcode("3011AD"), "Rotterdam"),
    )
    with engine.begin() as conn:
        res = save_students(conn, [moved, _student(2)], pseudo, NOW)
    assert (res.created, res.updated, res.unchanged) == (0, 1, 1)
    [change] = res.changes
    assert set(change.fields) == {"gemeente", "straat", "huisnummer", "postcode", "plaats"}
    assert change.subject_key == pseudo.subject(Bsn(_bsn(1)))
    with engine.connect() as conn:
        row = conn.execute(select(student).where(student.c.leerlingid == "L00001")).mappings().one()
    assert row["gemeente"] == "GM0599"
    assert row["plaats"] == "Rotterdam"


def test_secret_address_stores_no_address(engine: Engine) -> None:
    _parties(engine)
    secret = _student(3, address=None, adres_geheim=True)
    with engine.begin() as conn:
        save_students(conn, [secret], Pseudonymizer(KEY), NOW)
    with engine.connect() as conn:
        row = conn.execute(select(student)).mappings().one()
    assert row["adres_geheim"] is True
    assert row["straat"] is None
    assert row["postcode"] is None


def test_sqlite_fast_insert_stores_exactly_what_sqlalchemy_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """store.students inserts through the sqlite3 driver on SQLite; the rows must be the very
    values SQLAlchemy's own insert stores (compared as raw SQLite values, type included)."""
    import overstap.store.bulk as bulk_module
    from overstap.store import migrate
    from overstap.store.engine import make_engine

    pseudo = Pseudonymizer(KEY)
    batch = [
        _student(1),
        _student(2, adres_geheim=True, address=None, contact=Contact("", "")),
        _student(3, guardians=()),
    ]
    raw: list[list[tuple[object, ...]]] = []
    for fast in (True, False):
        monkeypatch.setattr(bulk_module, "FAST_SQLITE", fast)
        engine = make_engine(f"sqlite:///{tmp_path / f'fast-{fast}.db'}")
        migrate.upgrade(engine)
        _parties(engine)
        with engine.begin() as conn:
            save_students(conn, batch, pseudo, NOW)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT *, typeof(geboortedatum), typeof(updated_at), typeof(guardians),"
                " typeof(adres_geheim) FROM student ORDER BY leerlingid"
            ).all()
        raw.append([tuple(r) for r in rows])
        engine.dispose()
    assert raw[0] == raw[1]
    assert len(raw[0]) == 3


def test_a_pulled_move_keeps_the_old_residence_for_the_days_before(engine: Engine) -> None:
    from datetime import timedelta

    from overstap.store.signals import living_in, residences
    from overstap.store.tables import residence

    _parties(engine)
    pseudo = Pseudonymizer(KEY)
    with engine.begin() as conn:
        save_students(conn, [_student(1), _student(2)], pseudo, NOW)
    rotterdam = _student(
        1,
        gemeente=Gemeentecode("GM0599"),
        address=Address("Coolsingel", "40", Postcode("3011AD"), "Rotterdam"),
    )
    later = NOW + timedelta(days=30)
    hidden = _student(1, gemeente=Gemeentecode("GM0518"), address=None, adres_geheim=True)
    with engine.begin() as conn:
        save_students(conn, [rotterdam, _student(2)], pseudo, NOW)
    with engine.begin() as conn:
        save_students(conn, [hidden], pseudo, later)
    with engine.connect() as conn:
        sid = conn.execute(select(student.c.id).where(student.c.leerlingid == "L00001")).scalar()
        rows = conn.execute(
            select(residence.c.since, residence.c.gemeente, residence.c.straat, residence.c.plaats)
            .where(residence.c.student_id == sid)
            .order_by(residence.c.id)
        ).all()
        history = residences(conn, [sid])[sid]
        unmoved = conn.execute(select(func.count()).select_from(residence)).scalar_one()
    assert [tuple(r) for r in rows] == [
        (None, "GM0363", "Dorpsstraat", "Amsterdam"),  # where the student lived before
        (NOW.date(), "GM0599", "Coolsingel", "Rotterdam"),
        (later.date(), "GM0518", None, None),  # a secret address stays out of the history
    ]
    assert unmoved == 3  # the student who did not move has no history rows
    day_before = NOW.date() - timedelta(days=1)
    assert living_in(history, "GM0518", day_before) == "GM0363"
    assert living_in(history, "GM0518", NOW.date()) == "GM0599"
    assert living_in(history, "GM0518", later.date()) == "GM0518"
