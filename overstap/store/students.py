"""Students and region parties in the hub's store: idempotent upserts that report what changed."""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, insert, or_, select, update

from overstap.audit.pseudonym import Pseudonymizer
from overstap.domain.calendar import SchoolYear
from overstap.domain.identifiers import BrinVestiging, Bsn, Gemeentecode, Onderwijsnummer, Postcode
from overstap.domain.parties import DoorstroompuntRegion, MboInstitution, Municipality, VoSchool
from overstap.domain.student import Address, Contact, Guardian, Level, Name, Student
from overstap.store.bulk import bulk_insert
from overstap.store.lookup import one_of, one_of_value
from overstap.store.tables import (
    doorstroompunt_region,
    mbo_institution,
    municipality,
    residence,
    student,
    vo_school,
)
from overstap.store.upsert import upsert

# Columns compared to decide whether a pulled student changed (updated_at excluded on purpose).
_COMPARED = (
    "subject_key", "bsn", "onderwijsnummer", "voornamen", "roepnaam", "voorvoegsel", "achternaam",
    "geboortedatum", "gemeente", "adres_geheim", "straat", "huisnummer", "postcode", "plaats",
    "phone", "email", "guardians", "level", "leerjaar", "leaving_year", "school_year",
)  # fmt: skip


@dataclass
class StudentChange:
    """One student that was created or changed; fields are column names, never values."""

    subject_key: str
    school: str
    created: bool
    fields: tuple[str, ...] = ()


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    changes: list[StudentChange] = field(default_factory=list)


def save_parties(
    conn: Connection,
    regions: Iterable[DoorstroompuntRegion],
    municipalities: Iterable[Municipality],
    schools: Iterable[VoSchool],
    institutions: Iterable[MboInstitution],
) -> None:
    upsert(
        conn,
        doorstroompunt_region,
        [
            {"code": str(r.code), "name": r.name, "contact_gemeente": str(r.contact_gemeente)}
            for r in regions
        ],
        ["code"],
    )
    upsert(
        conn,
        municipality,
        [
            {"code": str(m.code), "name": m.name, "region": str(m.region), "oin": str(m.oin)}
            for m in municipalities
        ],
        ["code"],
    )
    upsert(
        conn,
        vo_school,
        [
            {
                "location": str(s.location),
                "brin": str(s.brin),
                "name": s.name,
                "oin": str(s.oin),
                "gemeente": str(s.gemeente),
                "sis": s.sis,
            }
            for s in schools
        ],
        ["location"],
    )
    upsert(
        conn,
        mbo_institution,
        [
            {"brin": str(i.brin), "name": i.name, "oin": str(i.oin), "transport": i.transport}
            for i in institutions
        ],
        ["brin"],
    )


# The compared columns but the birth date (marshal does not take dates), in _COMPARED order.
_compared_but_birth_date = itemgetter(*(c for c in _COMPARED if c != "geboortedatum"))


def fingerprint(row: dict[str, Any]) -> str:
    """A digest of the compared columns: equal fingerprints, equal student (no need to read it).

    The digested bytes are marshal format version 0 of the compared values (the birth date as
    its ordinal): a type tag and a length before every value, so different rows give different
    bytes; version 0 never refers back to an earlier object, so equal rows give equal bytes in
    any process. It is about three times cheaper than json.dumps. A value marshal refuses (a str
    subclass, say) falls back to repr(), marked so it cannot equal any marshal output.

    Stored fingerprints of the older format (json.dumps of the same columns) simply do not match:
    `save_student_rows` then compares the columns in full, finds nothing changed and stores the
    new fingerprint, so a format change costs one full comparison per row once, never a missed
    or invented change.
    """
    values = (row["geboortedatum"].toordinal(), _compared_but_birth_date(row))
    try:
        content = marshal.dumps(values, 0)
    except ValueError:
        content = b"repr:" + repr(values).encode("utf-8")
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def student_row(s: Student, pseudonyms: Pseudonymizer, now: datetime) -> dict[str, Any]:
    identifier, name, addr, contact = s.identifier, s.name, s.address, s.contact
    is_bsn = isinstance(identifier, Bsn)
    # str() of Gemeentecode and Postcode is their value; read it without the call.
    if addr is None:
        straat = huisnummer = postcode = plaats = None
    else:
        straat, huisnummer, postcode, plaats = (
            addr.straat,
            addr.huisnummer,
            addr.postcode.value,
            addr.plaats,
        )
    return {
        "school": str(s.school),
        "leerlingid": s.leerlingid,
        "subject_key": pseudonyms.subject(identifier),
        "bsn": identifier.value if is_bsn else None,
        "onderwijsnummer": None if is_bsn else identifier.value,
        "voornamen": name.voornamen,
        "roepnaam": name.roepnaam,
        "voorvoegsel": name.voorvoegsel,
        "achternaam": name.achternaam,
        "geboortedatum": s.birth_date,
        "gemeente": s.gemeente.value,
        "adres_geheim": s.adres_geheim,
        "straat": straat,
        "huisnummer": huisnummer,
        "postcode": postcode,
        "plaats": plaats,
        "phone": contact.phone,
        "email": contact.email,
        "guardians": [
            {
                "voornamen": g.name.voornamen,
                "voorvoegsel": g.name.voorvoegsel,
                "achternaam": g.name.achternaam,
                "phone": g.contact.phone,
                "email": g.contact.email,
                "relation": g.relation,
            }
            for g in s.guardians
        ],
        "level": s.level.value,
        "leerjaar": s.leerjaar,
        "leaving_year": s.leaving_year,
        "school_year": str(s.school_year),
        "updated_at": now,
    }


def identifier_from_row(row: Any) -> Bsn | Onderwijsnummer:
    """The personal number of a `student` row."""
    if row["bsn"]:
        return Bsn(row["bsn"])
    # Stored numbers passed the pull's checks; the checksum is only a warning (DOMAIN.md).
    return Onderwijsnummer(row["onderwijsnummer"], check_checksum=False)


def student_from_row(row: Any) -> Student:
    """The domain student from a `student` row (the inverse of `student_row`)."""
    identifier = identifier_from_row(row)
    address = (
        None
        if row["adres_geheim"] or row["straat"] is None
        else Address(row["straat"], row["huisnummer"], Postcode(row["postcode"]), row["plaats"])
    )
    return Student(
        leerlingid=row["leerlingid"],
        school=BrinVestiging.parse(row["school"]),
        identifier=identifier,
        name=Name(row["voornamen"], row["achternaam"], row["voorvoegsel"], row["roepnaam"]),
        birth_date=row["geboortedatum"],
        gemeente=Gemeentecode(row["gemeente"]),
        address=address,
        adres_geheim=row["adres_geheim"],
        contact=Contact(row["phone"], row["email"]),
        guardians=tuple(
            Guardian(
                Name(g["voornamen"], g["achternaam"], g["voorvoegsel"]),
                Contact(g["phone"], g["email"]),
                g["relation"],
            )
            for g in row["guardians"]
        ),
        level=Level(row["level"]),
        school_year=SchoolYear.parse(row["school_year"]),
        leaving_year=row["leaving_year"],
        leerjaar=row["leerjaar"],
    )


def student_rows(
    students: Sequence[Student], pseudonyms: Pseudonymizer, now: datetime
) -> list[dict[str, Any]]:
    """Rows with their fingerprints: build them before the write transaction (CPU work that
    need not hold the database's write lock)."""
    rows = [student_row(s, pseudonyms, now) for s in students]
    for row in rows:
        row["fingerprint"] = fingerprint(row)
        # Serialised here, outside the write lock, for the SQLite insert (see _insert_students).
        row[_GUARDIANS_JSON] = json.dumps(row["guardians"])
    return rows


def save_students(
    conn: Connection, students: Sequence[Student], pseudonyms: Pseudonymizer, now: datetime
) -> UpsertResult:
    """Upsert keyed by school + leerlingid; a second run with the same data changes nothing."""
    return save_student_rows(conn, student_rows(students, pseudonyms, now))


@dataclass
class Existing:
    """What the store holds for a batch of rows: by key (id and fingerprint) and by subject."""

    by_key: dict[tuple[str, str], Any]
    by_subject: dict[str, tuple[str, str]]  # subject key -> (school, leerlingid)


_LOOKUP: dict[str, Select[Any]] = {}  # dialect -> the statement, built once (run per school)


def _lookup_statement(conn: Connection) -> Select[Any]:
    statement = _LOOKUP.get(conn.dialect.name)
    if statement is None:
        statement = select(
            student.c.id,
            student.c.school,
            student.c.leerlingid,
            student.c.fingerprint,
            student.c.subject_key,
        ).where(
            or_(
                and_(
                    student.c.school == bindparam("p_school"),
                    one_of(conn, student.c.leerlingid, name="p_leerlingids"),
                ),
                one_of(conn, student.c.subject_key, name="p_subjects"),
            )
        )
        _LOOKUP[conn.dialect.name] = statement
    return statement


def lookup(conn: Connection, rows: Sequence[dict[str, Any]]) -> Existing:
    """One query per school finds both the rows' own students and anyone else holding their
    personal numbers. `leerlingid IN (...)` per school: SQLite cannot use the (school,
    leerlingid) index for a row-value IN list and scans the table instead (measured: the
    lookup grew with the table, 200 µs per statement at 20,000 students); each list is one
    parameter (`store.lookup.one_of`), and both halves are index searches. Only ids and
    fingerprints are read: whole rows (JSON, dates) cost more than the rest of the upsert."""
    by_school: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_school.setdefault(row["school"], []).append(row)
    found = Existing({}, {})
    statement = _lookup_statement(conn)
    for school, group in by_school.items():
        result = conn.execute(
            statement,
            {
                "p_school": school,
                "p_leerlingids": one_of_value(conn, [r["leerlingid"] for r in group]),
                "p_subjects": one_of_value(conn, [r["subject_key"] for r in group]),
            },
        )
        for e in result:
            found.by_key[(e.school, e.leerlingid)] = e
            found.by_subject[e.subject_key] = (e.school, e.leerlingid)
    return found


def save_student_rows(
    conn: Connection, rows: Sequence[dict[str, Any]], existing: Existing | None = None
) -> UpsertResult:
    """`save_students` for rows made by `student_rows`; `existing` from `lookup` if the caller
    has it already."""
    result = UpsertResult()
    if not rows:
        return result
    keys = [(r["school"], r["leerlingid"]) for r in rows]
    known = (existing or lookup(conn, rows)).by_key
    changed_ids = [
        known[k].id
        for k, row in zip(keys, rows, strict=True)
        if k in known and known[k].fingerprint != row["fingerprint"]
    ]
    full_rows = {
        e["id"]: e
        for e in (
            conn.execute(select(student).where(student.c.id.in_(changed_ids))).mappings()
            if changed_ids
            else ()
        )
    }
    new_rows: list[dict[str, Any]] = []
    moved: list[tuple[Any, dict[str, Any]]] = []  # (stored row, new row) of address changes
    for key, row in zip(keys, rows, strict=True):
        seen = known.get(key)
        if seen is None:
            new_rows.append(row)
            result.created += 1
            result.changes.append(StudentChange(row["subject_key"], row["school"], True))
            continue
        if seen.fingerprint == row["fingerprint"]:
            result.unchanged += 1
            continue
        old = full_rows[seen.id]
        changed = tuple(c for c in _COMPARED if old[c] != row[c])
        if not changed:
            # Same content under an older fingerprint (or none yet): store the current one.
            conn.execute(
                update(student)
                .where(student.c.id == seen.id)
                .values(fingerprint=row["fingerprint"])
            )
            result.unchanged += 1
            continue
        conn.execute(
            update(student)
            .where(student.c.id == old["id"])
            .values({c: row[c] for c in (*changed, "fingerprint", "updated_at")})
        )
        if not _ADDRESS.isdisjoint(changed):
            moved.append((old, row))
        result.updated += 1
        result.changes.append(StudentChange(row["subject_key"], row["school"], False, changed))
    if new_rows:
        _insert_students(conn, new_rows)
    if moved:
        _record_moves(conn, moved)
    return result


_ADDRESS = frozenset({"gemeente", "adres_geheim", "straat", "huisnummer", "postcode", "plaats"})


def _residence_row(student_id: int, since: date | None, r: Any) -> dict[str, Any]:
    secret = r["adres_geheim"]  # a secret address is not kept in the history either
    return {
        "student_id": student_id,
        "since": since,
        "gemeente": r["gemeente"],
        **{c: None if secret else r[c] for c in ("straat", "huisnummer", "postcode", "plaats")},
    }


def _record_moves(conn: Connection, moved: Sequence[tuple[Any, dict[str, Any]]]) -> None:
    """A pull that sees a new address keeps the old one in the residence history, so a signal
    about a day before the move still goes to the municipality the student lived in then.
    The move is dated by the day the hub learned it (the export says no more); a history
    the region load wrote (with its own dates) is extended, not replaced."""
    ids = [old["id"] for old, _ in moved]
    with_history = set(
        conn.execute(
            select(residence.c.student_id).where(one_of(conn, residence.c.student_id, ids))
        ).scalars()
    )
    rows: list[dict[str, Any]] = []
    for old, new in moved:
        if old["id"] not in with_history:
            rows.append(_residence_row(old["id"], None, old))
        rows.append(_residence_row(old["id"], new["updated_at"].date(), new))
    conn.execute(insert(residence), rows)


def _insert_students(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    bulk_insert(conn, student, rows, ready={"guardians": _GUARDIANS_JSON})


_GUARDIANS_JSON = "_guardians_json"  # a row key that is not a column (store.bulk.PRIVATE)
