"""Migrations are the only way the schema changes: they must match the tables and run both ways."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from overstap.store import migrate
from overstap.store.tables import metadata


def test_migrated_schema_matches_the_tables(engine: Engine) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == [], f"tables.py and the migrations disagree: {diff}"


def test_downgrade_and_upgrade_again(engine: Engine) -> None:
    migrate.downgrade(engine, "base")
    assert "audit_event" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert "audit_event" in inspect(engine).get_table_names()
    assert migrate.current_revision(engine) == migrate.head_revision()
