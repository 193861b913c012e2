"""The audit chain on real databases: append, verify, tamper detection, append-only triggers."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from overstap.audit.chain import AuditEvent
from overstap.store.audit_log import AuditLog


def _append(engine: Engine, n: int, *, actor: str = "test") -> None:
    with engine.begin() as conn:
        AuditLog(conn).append_many(
            AuditEvent(actor, "pulled", "student", f"ps1_{i:032x}", detail={"i": i})
            for i in range(n)
        )


def _verify(engine: Engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return AuditLog(conn).verify()


def _bypass_guard(conn, dialect: str) -> None:  # type: ignore[no-untyped-def]
    """What an attacker with database rights does first: get around the append-only trigger."""
    if dialect == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER audit_event_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
    else:
        conn.exec_driver_sql("SET session_replication_role = replica")


def test_append_and_verify(engine: Engine) -> None:
    _append(engine, 5)
    _append(engine, 3)
    report = _verify(engine)
    assert report.ok, report.problem
    assert report.count == report.head_seq == 8


def test_empty_chain_verifies(engine: Engine) -> None:
    report = _verify(engine)
    assert report.ok and report.count == 0


def test_rollback_takes_audit_records_with_it(engine: Engine) -> None:
    _append(engine, 2)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        AuditLog(conn).append(AuditEvent("t", "sent", "dossier", "d-1"))
        raise RuntimeError("the change failed")
    report = _verify(engine)
    assert report.ok and report.count == 2


def test_updated_row_is_named(engine: Engine) -> None:
    _append(engine, 10)
    with engine.begin() as conn:
        _bypass_guard(conn, engine.dialect.name)
        conn.execute(text("UPDATE audit_event SET result = 'failed' WHERE seq = 7"))
    report = _verify(engine)
    assert not report.ok
    assert report.problem is not None and report.problem.seq == 7
    assert "altered" in report.problem.reason
    assert report.count == 6


def test_deleted_middle_row_is_named(engine: Engine) -> None:
    _append(engine, 10)
    with engine.begin() as conn:
        _bypass_guard(conn, engine.dialect.name)
        conn.execute(text("DELETE FROM audit_event WHERE seq = 4"))
    report = _verify(engine)
    assert report.problem is not None and report.problem.seq == 4
    assert "missing" in report.problem.reason


def test_rows_cut_from_the_end_are_noticed(engine: Engine) -> None:
    _append(engine, 10)
    with engine.begin() as conn:
        _bypass_guard(conn, engine.dialect.name)
        conn.execute(text("DELETE FROM audit_event WHERE seq > 8"))
    report = _verify(engine)
    assert report.problem is not None and report.problem.seq == 9
    assert "removed from the end" in report.problem.reason


def test_rehashed_forgery_breaks_the_next_link(engine: Engine) -> None:
    """Recomputing the altered record's own hash does not help: the next prev_hash disagrees."""
    from overstap.audit.chain import AuditRecord, recompute

    _append(engine, 5)
    with engine.begin() as conn:
        row = conn.execute(text("SELECT * FROM audit_event WHERE seq = 2")).mappings().one()
        forged = AuditRecord(**{**row, "result": "forged"})
        _bypass_guard(conn, engine.dialect.name)
        conn.execute(
            text("UPDATE audit_event SET result = 'forged', hash = :h WHERE seq = 2"),
            {"h": recompute(forged)},
        )
    report = _verify(engine)
    assert report.problem is not None and report.problem.seq == 3
    assert "prev_hash" in report.problem.reason


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_event SET result = 'x'", "DELETE FROM audit_event"],
)
def test_append_only_trigger_refuses_changes(engine: Engine, statement: str) -> None:
    _append(engine, 2)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert _verify(engine).count == 2


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_truncate_refused_on_postgres(engine: Engine) -> None:
    _append(engine, 2)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_event"))


def test_concurrent_appenders_keep_one_chain(engine: Engine) -> None:
    """Two writers at once must serialise on the head, not fork the chain."""
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            for _ in range(20):
                _append(engine, 5, actor=name)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    report = _verify(engine)
    assert report.ok, report.problem
    assert report.count == 300
