"""The signal rules as set-based queries over a whole leaving cohort, and the signal table.

Each rule of overstap.domain.signals.evaluate is one query here, over every student of the
cohort at once: a registration's standing on a day is its latest accepted report with a status
date up to that day (a window function over the `status_message` ledger), aggregated per
student. The queries return only candidates (students for whom a rule holds, without a signal of
that kind yet); the age and startkwalificatie conditions, which depend on the signal date, and
the routing to the municipality of residence are applied to those few in Python
(overstap.services.signals). tests/integration/test_signal_rules.py holds these queries to the
domain's reference evaluation on generated cohorts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Integer,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from overstap.domain.calendar import SchoolCalendar, SchoolYear
from overstap.domain.registration import Outcome
from overstap.domain.signals import OPEN, REFUSED
from overstap.domain.states import RegistrationStatus, SignalKind, SignalState
from overstap.store.lookup import one_of
from overstap.store.tables import (
    municipality,
    residence,
    school_calendar,
    signal,
    status_message,
    student,
    vo_school,
)

# Reports that describe a registration: applied, the same news again, or an older report that
# arrived late (it still tells what held on its own date). Duplicates and misfits do not.
_ACCEPTED = (Outcome.APPLIED.value, Outcome.SAME.value, Outcome.STALE.value)
_OPEN = [s.value for s in OPEN]
_REFUSED = [s.value for s in REFUSED]


def calendar_for(conn: Connection, year: SchoolYear) -> SchoolCalendar:
    """The cohort's configured dates, or the defaults when none are stored."""
    row = conn.execute(
        select(school_calendar).where(school_calendar.c.school_year == str(year))
    ).first()
    if row is None:
        return SchoolCalendar(year)
    return SchoolCalendar(
        year,
        registration_deadline=row.registration_deadline,
        zomerlek_date=row.zomerlek_date,
        afgewezen_grace_days=row.afgewezen_grace_days,
        diploma_date=row.diploma_date,
    )


def save_calendar(conn: Connection, calendar: SchoolCalendar) -> None:
    values = {
        "registration_deadline": calendar.registration_deadline,
        "zomerlek_date": calendar.zomerlek_date,
        "afgewezen_grace_days": calendar.afgewezen_grace_days,
        "diploma_date": calendar.diploma_date,
    }
    changed = conn.execute(
        update(school_calendar)
        .where(school_calendar.c.school_year == str(calendar.year))
        .values(values)
    )
    if changed.rowcount == 0:
        conn.execute(insert(school_calendar).values(school_year=str(calendar.year), **values))


def _standing(year: str, day: date, only: str | None = None) -> Select[Any]:
    """Per student of cohort `year`: registrations known on `day`, each at its latest report.
    `only` names a table whose `student_id`s restrict it (a small subset of the cohort)."""
    m = status_message
    latest = func.row_number().over(
        partition_by=(m.c.student_id, m.c.mbo_brin),
        order_by=(m.c.sent_at.desc(), m.c.message_id.desc()),
    )
    reports = (
        select(m.c.student_id, m.c.status, m.c.status_date, latest.label("rn"))
        .join(student, student.c.id == m.c.student_id)
        .where(
            student.c.school_year == year,
            m.c.outcome.in_(_ACCEPTED),
            m.c.status_date <= day,
        )
    )
    if only is not None:
        reports = reports.where(m.c.student_id.in_(select(_subset(only).c.student_id)))
    r = reports.subquery().c
    ingeschreven = RegistrationStatus.INGESCHREVEN.value
    uitgeschreven = RegistrationStatus.UITGESCHREVEN.value
    return (
        select(
            r.student_id,
            func.count().label("any"),
            func.sum(case((r.status.in_(_OPEN), 1), else_=0)).label("open"),
            func.sum(case((r.status == ingeschreven, 1), else_=0)).label("enrolled"),
            func.max(case((r.status == uitgeschreven, r.status_date))).label("last_out"),
            func.max(case((r.status.in_(_REFUSED), r.status_date))).label("last_refused"),
        )
        .where(r.rn == 1)
        .group_by(r.student_id)
    )


def _standing_table(name: str) -> Table:
    """A materialised `_standing` (a temporary table of this connection)."""
    return Table(
        name,
        MetaData(),
        Column("student_id", Integer),
        Column("any", Integer),
        Column("open", Integer),
        Column("enrolled", Integer),
        Column("last_out", Date),
        Column("last_refused", Date),
    )


def _subset(name: str) -> Table:
    return Table(name, MetaData(), Column("student_id", Integer))


def _materialise(conn: Connection, name: str, query: Select[Any]) -> None:
    # Values are rendered into the statement: PostgreSQL takes no parameters in CREATE TABLE
    # AS. They are the cohort's name and dates, never input from outside.
    sql = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(name)}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {quote(name)} AS {sql}")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {quote(name)}")  # temporary tables get no autovacuum


def _drop(conn: Connection, *names: str) -> None:
    quote = conn.dialect.identifier_preparer.quote
    for name in names:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(name)}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A student for whom a rule holds on the evaluation day, before remit and routing."""

    student_id: int
    subject_key: str
    kind: SignalKind
    base_date: date  # the signal date, or for afgewezen the refusal (grace added by the caller)
    birth_date: date = field(repr=False)  # personal data: not in a log line or traceback
    startkwalificatie: date | None
    gemeente: str  # as on the student row: the residence when no history is kept


@dataclass(frozen=True, slots=True)
class Resolved:
    signal_id: int
    signal_ref: str
    student_id: int
    subject_key: str
    kind: SignalKind
    state: SignalState
    gemeente: str
    regio: str | None


def _no_signal_yet(kind: SignalKind, year: str) -> ColumnElement[bool]:
    return ~exists().where(
        signal.c.student_id == student.c.id,
        signal.c.kind == kind.value,
        signal.c.school_year == year,
    )


def _zero(column: Any) -> ColumnElement[Any]:
    return func.coalesce(column, 0)


_NOW, _UNENROLLED, _AT_ZOMERLEK = (
    "overstap_standing_now",
    "overstap_unenrolled",
    "overstap_standing_z",
)


def evaluate_cohort(
    conn: Connection, calendar: SchoolCalendar, on: date
) -> tuple[list[Candidate], list[Resolved]]:
    """Students of the cohort for whom a rule holds on `on` and who have no signal of that kind
    yet, and the cohort's signals whose situation resolved by `on`. `on` must lie in the
    cohort's evaluation window.

    The standing on `on` is computed once, for the whole cohort (one window aggregate over the
    ledger); everything else reads it. The standing on the zomerlek date is needed only for
    students not enrolled on `on` (a zomerlek signal of anyone else would be resolved already),
    a small part of the cohort; on the zomerlek date itself it is the same table.
    """
    year = str(calendar.year)
    deadline = calendar.registration_deadline
    try:
        _materialise(conn, _NOW, _standing(year, on))
        now = _standing_table(_NOW)
        at_z: Any = now.alias("at_zomerlek")  # on the zomerlek date itself, the same standing
        if on > calendar.zomerlek_date:
            _materialise(conn, _UNENROLLED, select(now.c.student_id).where(now.c.enrolled == 0))
            _materialise(conn, _AT_ZOMERLEK, _standing(year, calendar.zomerlek_date, _UNENROLLED))
            at_z = _standing_table(_AT_ZOMERLEK)
        found = _candidates(conn, calendar, on, year, deadline, now, at_z)
        withdrawn = _resolved(conn, year, now)
    finally:
        _drop(conn, _NOW, _UNENROLLED, _AT_ZOMERLEK)
    return found, withdrawn


def _candidates(
    conn: Connection,
    calendar: SchoolCalendar,
    on: date,
    year: str,
    deadline: date,
    now: Table,
    at_z: Table,
) -> list[Candidate]:
    s = student.c
    m = status_message.c
    cols = (s.id, s.subject_key, s.geboortedatum, s.startkwalificatie_on, s.gemeente)
    registered_by_deadline = exists().where(
        m.student_id == s.id, m.outcome.in_(_ACCEPTED), m.status_date <= deadline
    )
    queries: list[tuple[SignalKind, Any]] = [
        (
            SignalKind.GEEN_AANMELDING,
            select(*cols, literal(deadline).label("base"))
            .select_from(student.outerjoin(now, now.c.student_id == s.id))
            .where(
                s.school_year == year,
                s.leaving_year.is_(True),
                or_(s.cohort_left_on.is_(None), s.cohort_left_on > deadline),
                _zero(now.c.open) + _zero(now.c.enrolled) == 0,
                ~registered_by_deadline,
                _no_signal_yet(SignalKind.GEEN_AANMELDING, year),
            ),
        )
    ]
    if on >= calendar.zomerlek_date:
        queries.append(
            (
                SignalKind.ZOMERLEK,
                select(*cols, literal(calendar.zomerlek_date).label("base"))
                .select_from(
                    student.join(at_z, at_z.c.student_id == s.id).join(
                        now, now.c.student_id == s.id
                    )
                )
                .where(
                    at_z.c.open > 0,
                    at_z.c.enrolled == 0,
                    at_z.c.last_out.is_(None),
                    now.c.enrolled == 0,
                    _no_signal_yet(SignalKind.ZOMERLEK, year),
                ),
            )
        )
    queries.append(
        (
            SignalKind.UITVAL,
            select(*cols, now.c.last_out.label("base"))
            .select_from(student.join(now, now.c.student_id == s.id))
            .where(
                now.c.last_out >= calendar.mbo_start,
                now.c.enrolled == 0,
                _no_signal_yet(SignalKind.UITVAL, year),
            ),
        )
    )
    refused_by = on - timedelta(days=calendar.afgewezen_grace_days)
    queries.append(
        (
            SignalKind.AFGEWEZEN_ZONDER_ALTERNATIEF,
            select(*cols, now.c.last_refused.label("base"))
            .select_from(student.join(now, now.c.student_id == s.id))
            .where(
                now.c.last_refused <= refused_by,
                now.c.open == 0,
                now.c.enrolled == 0,
                _no_signal_yet(SignalKind.AFGEWEZEN_ZONDER_ALTERNATIEF, year),
            ),
        )
    )
    found: list[Candidate] = []
    for kind, query in queries:
        for row in conn.execute(query):
            found.append(Candidate(row[0], row[1], kind, _day(row[5]), row[2], row[3], row[4]))
    return found


def _day(value: Any) -> date:
    # A literal or an aggregate of a Date column comes back as text on SQLite.
    return value if isinstance(value, date) else date.fromisoformat(value)


def _resolved(conn: Connection, year: str, now: Table) -> list[Resolved]:
    """Signals not yet withdrawn whose situation resolved: a registration ends geen_aanmelding
    and afgewezen_zonder_alternatief, an enrolment ends zomerlek and uitval
    (overstap.domain.signals.RESOLVED_BY)."""
    enrolment_ends = [SignalKind.ZOMERLEK.value, SignalKind.UITVAL.value]
    query = (
        select(
            signal.c.id,
            signal.c.signal_ref,
            signal.c.student_id,
            student.c.subject_key,
            signal.c.kind,
            signal.c.state,
            signal.c.gemeente,
            signal.c.regio,
        )
        .select_from(
            signal.join(student, student.c.id == signal.c.student_id).join(
                now, now.c.student_id == signal.c.student_id
            )
        )
        .where(
            signal.c.school_year == year,
            signal.c.state != SignalState.WITHDRAWN.value,
            or_(
                and_(signal.c.kind.in_(enrolment_ends), now.c.enrolled > 0),
                and_(~signal.c.kind.in_(enrolment_ends), now.c.open + now.c.enrolled > 0),
            ),
        )
        .order_by(signal.c.id)
    )
    return [
        Resolved(r[0], r[1], r[2], r[3], SignalKind(r[4]), SignalState(r[5]), r[6], r[7])
        for r in conn.execute(query)
    ]


def residences(
    conn: Connection, student_ids: Sequence[int]
) -> dict[int, list[tuple[date | None, str]]]:
    """Each student's residence history, oldest first (the row without `since` first)."""
    found: dict[int, list[tuple[date | None, str]]] = {}
    if not student_ids:
        return found
    rows = conn.execute(
        select(residence.c.student_id, residence.c.since, residence.c.gemeente).where(
            one_of(conn, residence.c.student_id, student_ids)
        )
    )
    for student_id, since, gemeente in rows:
        found.setdefault(student_id, []).append((since, gemeente))
    for history in found.values():
        history.sort(key=lambda h: (h[0] is not None, h[0] or date.min))
    return found


def living_in(history: Iterable[tuple[date | None, str]], default: str, day: date) -> str:
    """The municipality of residence on `day`: the latest entry from `day` or before."""
    current = default
    for since, gemeente in history:
        if since is None or since <= day:
            current = gemeente
    return current


def regions_of(conn: Connection) -> dict[str, str]:
    """Municipality code -> Doorstroompunt region code, for the municipalities in the registry."""
    return dict(conn.execute(select(municipality.c.code, municipality.c.region)).tuples().all())


@dataclass(frozen=True, slots=True)
class KnownFacts:
    """What a school's records say beyond the SIS columns, for the signal rules: the day the
    student left the cohort, the day of the startkwalificatie, and the moves (each a day, a
    municipality and the address there, None when secret), oldest first."""

    school: str
    leerlingid: str
    cohort_left_on: date | None
    startkwalificatie: date | None
    home: tuple[str, tuple[str, str, str, str] | None]
    moves: tuple[tuple[date, str, tuple[str, str, str, str] | None], ...] = ()


def save_facts(conn: Connection, facts: Sequence[KnownFacts]) -> None:
    """Store the facts of already saved students; idempotent (a re-run replaces them)."""
    ids: dict[tuple[str, str], int] = {}
    by_school: dict[str, list[str]] = {}
    for f in facts:
        by_school.setdefault(f.school, []).append(f.leerlingid)
    for school, keys in by_school.items():
        rows = conn.execute(
            select(student.c.id, student.c.leerlingid).where(
                student.c.school == school, one_of(conn, student.c.leerlingid, keys)
            )
        )
        ids.update(((school, leerlingid), sid) for sid, leerlingid in rows)
    updates = [
        {
            "p_id": ids[(f.school, f.leerlingid)],
            "p_left": f.cohort_left_on,
            "p_sk": f.startkwalificatie,
        }
        for f in facts
        if f.cohort_left_on is not None or f.startkwalificatie is not None
    ]
    if updates:
        conn.execute(_SET_FACTS, updates)
    movers = [f for f in facts if f.moves]
    if not movers:
        return
    mover_ids = [ids[(f.school, f.leerlingid)] for f in movers]
    conn.execute(residence.delete().where(one_of(conn, residence.c.student_id, mover_ids)))
    rows_out: list[dict[str, Any]] = []
    for f, sid in zip(movers, mover_ids, strict=True):
        entries = [(None, *f.home), *f.moves]
        for since, gemeente, address in entries:
            straat, huisnummer, postcode, plaats = address or (None, None, None, None)
            rows_out.append(
                {
                    "student_id": sid,
                    "since": since,
                    "gemeente": gemeente,
                    "straat": straat,
                    "huisnummer": huisnummer,
                    "postcode": postcode,
                    "plaats": plaats,
                }
            )
    conn.execute(insert(residence), rows_out)


_SET_FACTS = (
    update(student)
    .where(student.c.id == bindparam("p_id"))
    .values(cohort_left_on=bindparam("p_left"), startkwalificatie_on=bindparam("p_sk"))
)


def refresh_statistics(conn: Connection) -> list[str]:
    """On PostgreSQL, ANALYZE the tables the rules read when their statistics are missing or
    stale (over a tenth of the rows changed since): right after a bulk load autovacuum has not
    caught up, the planner takes each table for one row and nests loops over the window
    aggregates (measured: 0.6 s instead of 10 ms per evaluation of a 1,500-student cohort).
    Returns the tables analysed; nothing to do on SQLite, whose planner does not need it here."""
    if conn.dialect.name != "postgresql":
        return []
    names = [student.name, status_message.name, signal.name, residence.name]
    stale = (
        conn.execute(
            text(
                "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(:names) AND ("
                "coalesce(last_analyze, last_autoanalyze) IS NULL"
                " OR n_mod_since_analyze > 0.1 * greatest(n_live_tup, 1000))"
            ),
            {"names": names},
        )
        .scalars()
        .all()
    )
    for name in sorted(stale):
        conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.quote(name)}")
    return sorted(stale)


@dataclass(frozen=True, slots=True)
class PendingSignal:
    """A raised signal not yet in a file, with what its file entry needs (read in one query)."""

    signal_id: int
    signal_ref: str
    kind: SignalKind
    school_year: str
    reason: str
    signal_date: date
    gemeente: str
    regio: str
    student_id: int
    # The student row (names, number, birth date, address): never in a repr.
    student: Any = field(repr=False)
    school_name: str


@dataclass(frozen=True, slots=True)
class PendingWithdrawal:
    signal_id: int
    signal_ref: str
    gemeente: str
    regio: str | None
    withdrawn_on: date
    reason: str


_PENDING_SIGNAL = and_(
    signal.c.state == SignalState.RAISED.value,
    signal.c.file_id.is_(None),
    signal.c.regio.is_not(None),
)
_PENDING_WITHDRAWAL = and_(
    signal.c.state == SignalState.WITHDRAWN.value,
    signal.c.file_id.is_not(None),
    signal.c.withdrawal_file_id.is_(None),
)
# What a file entry needs of the student: identity, birth date, address, school; nothing else.
_ENTRY_COLUMNS = (
    student.c.bsn, student.c.onderwijsnummer, student.c.voornamen, student.c.voorvoegsel,
    student.c.achternaam, student.c.roepnaam, student.c.geboortedatum, student.c.adres_geheim,
    student.c.straat, student.c.huisnummer, student.c.postcode, student.c.plaats,
    student.c.school,
)  # fmt: skip


def pending_gemeenten(conn: Connection) -> list[str]:
    """Municipalities (in the registry) with signals or withdrawals no file carried yet."""
    found = conn.execute(
        select(signal.c.gemeente)
        .where(or_(_PENDING_SIGNAL, and_(_PENDING_WITHDRAWAL, signal.c.regio.is_not(None))))
        .distinct()
    ).scalars()
    return sorted(found)


def pending_for_files(
    conn: Connection, gemeente: str
) -> tuple[list[PendingSignal], list[PendingWithdrawal]]:
    """One municipality's raised signals that no file carried yet, and withdrawals of signals a
    file did carry that no file has withdrawn yet (read per municipality: memory follows the
    largest municipality's day, not the cohort)."""
    rows = conn.execute(
        select(
            signal.c.id,
            signal.c.signal_ref,
            signal.c.kind,
            signal.c.school_year,
            signal.c.reason,
            signal.c.signal_date,
            signal.c.regio,
            signal.c.student_id,
            vo_school.c.name.label("school_name"),
            *_ENTRY_COLUMNS,
        )
        .select_from(
            signal.join(student, student.c.id == signal.c.student_id).join(
                vo_school, vo_school.c.location == student.c.school
            )
        )
        .where(_PENDING_SIGNAL, signal.c.gemeente == gemeente)
        .order_by(signal.c.id)
    ).mappings()
    signals = [
        PendingSignal(
            r["id"],
            r["signal_ref"],
            SignalKind(r["kind"]),
            r["school_year"],
            r["reason"],
            r["signal_date"],
            gemeente,
            r["regio"],
            r["student_id"],
            r,
            r["school_name"],
        )
        for r in rows
    ]
    withdrawals = [
        PendingWithdrawal(
            r.id, r.signal_ref, r.gemeente, r.regio, r.withdrawn_on, r.withdraw_reason
        )
        for r in conn.execute(
            select(signal).where(_PENDING_WITHDRAWAL, signal.c.gemeente == gemeente)
        )
    ]
    return signals, withdrawals


def history_of(
    conn: Connection, student_ids: Sequence[int], up_to: date
) -> dict[int, list[tuple[str, RegistrationStatus, date]]]:
    """Each student's accepted registration reports up to a day, oldest first (by the mbo's
    clock): the `inschrijvingshistorie` a municipality gets."""
    m = status_message.c
    found: dict[int, list[tuple[str, RegistrationStatus, date]]] = {}
    if not student_ids:
        return found
    rows = conn.execute(
        select(m.student_id, m.mbo_brin, m.status, m.status_date)
        .where(
            one_of(conn, m.student_id, student_ids),
            m.outcome.in_((Outcome.APPLIED.value, Outcome.STALE.value)),
            m.status_date <= up_to,
        )
        .order_by(m.student_id, m.status_date, m.sent_at, m.message_id)
    )
    for student_id, brin, status, day in rows:
        found.setdefault(student_id, []).append((brin, RegistrationStatus(status), day))
    return found


def addresses_of(
    conn: Connection, student_ids: Sequence[int]
) -> dict[int, list[tuple[date | None, tuple[str, str, str, str] | None]]]:
    """Each mover's addresses with the day they lived there from (None: from the first record)."""
    found: dict[int, list[tuple[date | None, tuple[str, str, str, str] | None]]] = {}
    if not student_ids:
        return found
    r = residence.c
    rows = conn.execute(
        select(r.student_id, r.since, r.straat, r.huisnummer, r.postcode, r.plaats).where(
            one_of(conn, r.student_id, student_ids)
        )
    )
    for sid, since, straat, nummer, postcode, plaats in rows:
        address = (straat, nummer, postcode, plaats) if straat else None
        found.setdefault(sid, []).append((since, address))
    for history in found.values():
        history.sort(key=lambda h: (h[0] is not None, h[0] or date.min))
    return found


def mark_in_file(
    conn: Connection,
    file_id: str,
    signal_ids: Sequence[int],
    withdrawal_ids: Sequence[int],
    now: datetime,
) -> None:
    """The file is in the outbox: its signals are sent, its withdrawals carried."""
    if signal_ids:
        conn.execute(
            update(signal)
            .where(
                one_of(conn, signal.c.id, signal_ids), signal.c.state == SignalState.RAISED.value
            )
            .values(state=SignalState.SENT.value, file_id=file_id, updated_at=now)
        )
    if withdrawal_ids:
        conn.execute(
            update(signal)
            .where(one_of(conn, signal.c.id, withdrawal_ids))
            .values(withdrawal_file_id=file_id, updated_at=now)
        )


def mark_delivered(conn: Connection, file_id: str, now: datetime) -> int:
    """The file reached the municipality: its signals still sent become delivered."""
    return conn.execute(
        update(signal)
        .where(signal.c.file_id == file_id, signal.c.state == SignalState.SENT.value)
        .values(state=SignalState.DELIVERED.value, updated_at=now)
    ).rowcount
