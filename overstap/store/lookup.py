"""`column IN (many values)` as one bound parameter: a JSON array on SQLite, an array on PostgreSQL.

A batch looks up thousands of keys at once. An expanded `IN (?, ?, ...)` makes SQLAlchemy render
a placeholder per value on every execution (a quarter of reconciliation's lookup time at 5,000
keys) and hits the bind-parameter limits of both drivers for big batches. One parameter avoids
both, and each database still answers with an index lookup per value: SQLite runs
`IN (SELECT value FROM json_each(?))` as an index probe per element, PostgreSQL `= ANY(array)`
as an index scan.

A statement run per school or per batch can be built once with a named parameter
(`one_of(..., name=...)`) and given its values with `one_of_value`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Connection, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY


def one_of(
    conn: Connection,
    column: ColumnElement[Any],
    values: Collection[Any] = (),
    *,
    name: str | None = None,
) -> ColumnElement[bool]:
    """`column IN values` for `conn`'s database; values are text or integers. With `name`, the
    values are left out and given at execution as `{name: one_of_value(conn, values)}`."""
    # A named parameter is required: a forgotten value fails instead of matching nothing.
    value = one_of_value(conn, values) if name is None else None
    required = name is not None
    if conn.dialect.name == "postgresql":
        array: BindParameter[Any] = bindparam(
            name, value, type_=ARRAY(column.type), required=required
        )
        return column == any_(array)
    elements = func.json_each(bindparam(name, value, required=required)).table_valued("value")
    return column.in_(select(elements.c.value))


def one_of_value(conn: Connection, values: Collection[Any]) -> Any:
    """The bound value of a named `one_of` parameter."""
    if conn.dialect.name == "postgresql":
        return list(values)
    return json.dumps(list(values))
