"""Bulk inserts: on SQLite straight through the driver, with the values SQLAlchemy would store.

SQLAlchemy's executemany costs ~23 µs per 25-column row here against ~9 µs for the sqlite3
driver given ready tuples, and bulk inserts run under the database's write lock, so they bound
parallel imports and reconciliation. The conversions below are SQLAlchemy's SQLite storage
formats (DATE as YYYY-MM-DD, DATETIME as "YYYY-MM-DD HH:MM:SS.ffffff" without zone - the hub
stores UTC only -, BOOLEAN as 0/1, JSON via json.dumps); tests hold both paths to identical
stored values (tests/integration/test_students_store.py, tests/integration/test_bulk.py).
PostgreSQL goes through SQLAlchemy unchanged.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, insert

# A row key starting with this is carried along for the caller, never stored.
PRIVATE = "_"
# Tests switch it off to compare both paths.
FAST_SQLITE = True


@functools.lru_cache(maxsize=256)
def _sqlite_datetime(value: datetime | None) -> str | None:
    # Cached: the rows of a batch share their times (updated_at, received_at).
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _sqlite_json(value: object) -> str | None:
    return None if value is None else json.dumps(value)


_SQLITE_STORAGE: dict[str, Callable[[Any], Any]] = {
    "Date": _sqlite_date,
    "DateTime": _sqlite_datetime,
    "Boolean": _sqlite_bool,
    "JSON": _sqlite_json,
}


def bulk_insert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    ready: Mapping[str, str] | None = None,
) -> None:
    """Insert `rows` (dicts with the same keys). `ready` maps a column to a private row key that
    already holds its stored form (e.g. JSON serialised before the write lock was taken)."""
    if not rows:
        return
    columns = [c for c in rows[0] if not c.startswith(PRIVATE)]
    if conn.dialect.name != "sqlite" or not FAST_SQLITE:
        conn.execute(insert(table), [{c: r[c] for c in columns} for r in rows])
        return
    # Only a few columns need converting; text and numbers pass as they are.
    convert = _conversions(table, columns)
    prepared = ready or {}
    params = []
    for row in rows:
        values = [row[c] for c in columns]
        for i, c, f in convert:
            key = prepared.get(c)
            values[i] = row[key] if key is not None and key in row else f(values[i])
        params.append(tuple(values))
    conn.exec_driver_sql(_insert_sql(conn, table, columns), params)


def insert_tuples(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert rows given as tuples in `columns` order, for a caller that already holds them so
    (the audit chain's `RecordRow`): no dict per row on SQLite, where the driver takes them as
    they are. Only for tables whose `columns` need no storage conversion (text and numbers)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite" or not FAST_SQLITE:
        conn.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])
        return
    if _conversions(table, columns):
        raise TypeError(f"insert_tuples: {table.name} has columns that need converting")
    conn.exec_driver_sql(_insert_sql(conn, table, columns), rows)


def _conversions(
    table: Table, columns: Sequence[str]
) -> list[tuple[int, str, Callable[[Any], Any]]]:
    return [
        (i, c, f)
        for i, c in enumerate(columns)
        if (f := _SQLITE_STORAGE.get(type(table.c[c].type).__name__)) is not None
    ]


def _insert_sql(conn: Connection, table: Table, columns: Sequence[str]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(table.c[c].name) for c in columns)  # KeyError for a stranger
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608 (the table's own names)
