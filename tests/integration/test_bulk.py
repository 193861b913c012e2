"""store.bulk's SQLite fast path stores exactly what SQLAlchemy's insert would, for every table
it serves (dates, times without zone, booleans, JSON, NULLs): compared as raw SQLite values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Table

import overstap.store.bulk as bulk
from overstap.store import migrate
from overstap.store.engine import make_engine
from overstap.store.tables import audit_event, registration, status_message, work_item

MOMENT = datetime(2026, 3, 10, 9, 30, 15, 123456, tzinfo=UTC)


def _rows() -> dict[str, list[dict[str, object]]]:
    return {
        "status_message": [
            {"message_id": "M1", "received_at": MOMENT, "channel": "soap", "mbo_brin": "25MB",
             "subject_key": "ps1_" + "a" * 32, "student_id": None, "dossier_id": None,
             "status": "ontvangen", "status_date": date(2026, 3, 9), "sent_at": MOMENT,
             "outcome": "work_item", "work_item": "unknown_student"},
        ],
        "work_item": [
            {"kind": "unknown_student", "message_id": "M1", "subject_key": "ps1_" + "a" * 32,
             "mbo_brin": "25MB", "student_id": None, "detail": "quote ' and é", "created_at": MOMENT},
        ],
    }  # fmt: skip


def _stored_both_ways(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    table: Table,
    write: Callable[[Connection], None],
) -> list[list[Any]]:
    """Every column of `table` with its SQLite storage class, after `write` on a fresh database
    with the fast path on, then off."""
    stored = []
    for fast in (True, False):
        monkeypatch.setattr(bulk, "FAST_SQLITE", fast)
        engine = make_engine(f"sqlite:///{tmp_path / f'{table.name}-{fast}.db'}")
        migrate.upgrade(engine)
        with engine.connect() as conn:
            # The rows only, no students needed: foreign keys off, on the driver connection
            # before SQLAlchemy begins a transaction (the pragma is ignored inside one).
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            write(conn)
            conn.commit()
            cols = ", ".join(f"{c.name}, typeof({c.name})" for c in table.c)
            stored.append(list(conn.exec_driver_sql(f"SELECT {cols} FROM {table.name}").all()))  # noqa: S608
        engine.dispose()
    return stored


@pytest.mark.parametrize("table", [status_message, work_item])
def test_fast_path_equals_sqlalchemy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: Table
) -> None:
    stored = _stored_both_ways(
        tmp_path,
        monkeypatch,
        table,
        lambda conn: bulk.bulk_insert(conn, table, _rows()[table.name]),
    )
    assert stored[0] == stored[1] and stored[0]


def test_registration_rows_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        {"student_id": 1, "mbo_brin": "25MB", "dossier_id": None, "status": "ingeschreven",
         "status_at": MOMENT, "updated_at": MOMENT},
    ]  # fmt: skip
    stored = _stored_both_ways(
        tmp_path, monkeypatch, registration, lambda conn: bulk.bulk_insert(conn, registration, rows)
    )
    assert stored[0] == stored[1] and stored[0]


def test_insert_tuples_equals_sqlalchemy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit chain appends tuples: the same stored values by both paths."""
    row = (1, "2026-03-10T09:30:15.123456Z", "actor é", "a.b", "kind", "ref", "ok", "hub", "{}",
           "0" * 64, "f" * 64)  # fmt: skip
    names = [c.name for c in audit_event.c]
    stored = _stored_both_ways(
        tmp_path, monkeypatch, audit_event,
        lambda conn: bulk.insert_tuples(conn, audit_event, names, [row]),
    )  # fmt: skip
    assert stored[0] == stored[1] and stored[0][0][::2] == row


def test_insert_tuples_refuses_columns_that_need_converting(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    migrate.upgrade(engine)
    with engine.begin() as conn, pytest.raises(TypeError, match="work_item"):
        bulk.insert_tuples(conn, work_item, ["kind", "created_at"], [("x", MOMENT)])
    engine.dispose()
