"""`column IN (many values)` as one bound parameter: a JSON array on SQLite, an array on PostgreSQL.

A batch looks up thousands of keys at once. An expanded `IN (?, ?, ...)` makes SQLAlchemy render
a placeholder per value on every execution (a quarter of reconciliation's lookup time at 5,000
keys) and hits the bind-parameter limits of both drivers for big batches. One parameter avoids
both, and each database still answers with an index lookup per value: SQLite runs
`IN (SELECT value FROM json_each(?))` as an index probe per element, PostgreSQL `= ANY(array)`
as an index scan.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Connection, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY


def one_of(
    conn: Connection, column: ColumnElement[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """`column IN values` for `conn`'s database; values are text or integers."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    elements = func.json_each(bindparam(None, json.dumps(list(values)))).table_valued("value")
    return column.in_(select(elements.c.value))
