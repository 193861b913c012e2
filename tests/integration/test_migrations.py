"""Migrations are the only way the schema changes: they must match the tables and run both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from overstap.audit.chain import AuditEvent
from overstap.store import migrate
from overstap.store.audit_log import AuditLog, fixed_clock
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


def test_0006_keeps_every_audit_record_and_the_guards(engine: Engine) -> None:
    """The rebuild of the audit table (SQLite) or the dropped index (PostgreSQL) keeps the chain
    verifiable both ways, and the append-only triggers still refuse changes afterwards."""
    migrate.downgrade(engine, "0005")
    with engine.begin() as conn:
        log = AuditLog(conn, fixed_clock(datetime(2026, 12, 2, tzinfo=UTC)))
        written = log.append_many(
            AuditEvent("test", "migration.probe", "batch", f"b{i}", detail={"n": i})
            for i in range(50)
        )
    for revision in ("head", "0005", "head"):
        if revision == "head":
            migrate.upgrade(engine)
        else:
            migrate.downgrade(engine, revision)
        with engine.connect() as conn:
            log = AuditLog(conn)
            report = log.verify()
            assert report.ok and report.count == 50, (revision, report)
            assert list(log.records()) == written
    with engine.connect() as conn:
        for sql in ("UPDATE audit_event SET result = 'x'", "DELETE FROM audit_event"):
            with pytest.raises(DBAPIError, match="append-only"), conn.begin():
                conn.execute(text(sql))
