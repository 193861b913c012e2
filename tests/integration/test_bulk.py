"""store.bulk's SQLite fast path stores exactly what SQLAlchemy's insert would, for every table
it serves (dates, times without zone, booleans, JSON, NULLs): compared as raw SQLite values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import overstap.store.bulk as bulk
from overstap.store import migrate
from overstap.store.engine import make_engine
from overstap.store.tables import registration, status_message, work_item

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


@pytest.mark.parametrize("table", [status_message, work_item])
def test_fast_path_equals_sqlalchemy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: object
) -> None:
    stored = []
    for fast in (True, False):
        monkeypatch.setattr(bulk, "FAST_SQLITE", fast)
        engine = make_engine(f"sqlite:///{tmp_path / f'{fast}.db'}")
        migrate.upgrade(engine)
        with engine.begin() as conn:
            bulk.bulk_insert(conn, table, _rows()[table.name])  # type: ignore[attr-defined]
        with engine.connect() as conn:
            cols = ", ".join(f"{c.name}, typeof({c.name})" for c in table.c)  # type: ignore[attr-defined]
            stored.append(conn.exec_driver_sql(f"SELECT {cols} FROM {table.name}").all())  # type: ignore[attr-defined]  # noqa: S608
        engine.dispose()
    assert stored[0] == stored[1] and stored[0]


def test_registration_rows_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = []
    for fast in (True, False):
        monkeypatch.setattr(bulk, "FAST_SQLITE", fast)
        engine = make_engine(f"sqlite:///{tmp_path / f'r{fast}.db'}")
        migrate.upgrade(engine)
        with engine.connect() as conn:
            # The row only, no student needed: foreign keys off, on the driver connection before
            # SQLAlchemy begins a transaction (the pragma is ignored inside one).
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            bulk.bulk_insert(conn, registration, [
                {"student_id": 1, "mbo_brin": "25MB", "dossier_id": None, "status": "ingeschreven",
                 "status_at": MOMENT, "updated_at": MOMENT},
            ])  # fmt: skip
            conn.commit()
            stored.append(
                conn.exec_driver_sql("SELECT *, typeof(status_at) FROM registration").all()
            )
        engine.dispose()
    assert stored[0] == stored[1] and stored[0]
