"""store.lookup.one_of: `column IN values` as one parameter finds exactly what IN finds, on both
databases, for text and integer keys, an empty list, and more values than either driver takes
as separate bind parameters (SQLite 32,766, psycopg 65,535)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import StatementError

from overstap.store.lookup import one_of, one_of_value
from overstap.store.tables import work_item

MOMENT = datetime(2026, 12, 2, tzinfo=UTC)


def _seed(engine: Engine) -> None:
    rows = [
        {"kind": "unknown_student", "message_id": f"M-{i}", "subject_key": f"ps1_{i:032x}",
         "mbo_brin": "25MB", "student_id": None, "detail": "", "created_at": MOMENT}
        for i in range(300)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(work_item), rows)


def test_one_of_finds_what_in_finds(engine: Engine) -> None:
    _seed(engine)
    wanted_text = [f"M-{i}" for i in range(0, 300, 7)] + ["M-absent", "m-0", "M-0 "]
    with engine.connect() as conn:
        ids = sorted(conn.execute(select(work_item.c.id)).scalars())
        for column, values in ((work_item.c.message_id, wanted_text), (work_item.c.id, ids[::5])):
            found = set(conn.execute(select(column).where(one_of(conn, column, values))).scalars())
            expected = set(conn.execute(select(column).where(column.in_(values))).scalars())
            assert found == expected and len(found) == len(values) - (
                3 if values is wanted_text else 0
            )


def test_one_of_empty_and_many_values(engine: Engine) -> None:
    _seed(engine)
    with engine.connect() as conn:
        column = work_item.c.message_id
        assert conn.execute(select(column).where(one_of(conn, column, []))).all() == []
        many = [f"M-{i}" for i in range(70_000)]  # more than either driver's parameter limit
        found = conn.execute(select(column).where(one_of(conn, column, many))).scalars().all()
        assert sorted(found) == sorted(f"M-{i}" for i in range(300))


def test_a_named_one_of_is_built_once_and_run_with_values(engine: Engine) -> None:
    _seed(engine)
    with engine.connect() as conn:
        column = work_item.c.message_id
        statement = select(column).where(one_of(conn, column, name="p_refs"))
        for wanted in (["M-1", "M-2", "nope"], ["M-299"], []):
            found = conn.execute(statement, {"p_refs": one_of_value(conn, wanted)}).scalars()
            assert sorted(found) == sorted(w for w in wanted if w != "nope")
        with pytest.raises(StatementError, match="p_refs"):
            conn.execute(statement)  # the values are required
