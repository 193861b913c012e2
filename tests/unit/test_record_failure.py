"""`record_failure`, every hub task's on_failure_callback: the failure goes into the audit chain
(which task, run and try, the error type, and the message only for the hub's own errors, which
never carry personal data), and the callback never raises, whatever state the hub is in."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import select

from overstap.bootstrap import HubContext
from overstap.domain.errors import ConfigurationError
from overstap.runtime.tasks import record_failure
from overstap.store.audit_log import AuditLog
from overstap.store.tables import audit_event

BSN = "123456782"  # passes the elfproef


def _context(error: BaseException) -> dict[str, object]:
    ti = SimpleNamespace(
        dag_id="overstap_sis_pull", task_id="pull", run_id="manual__1", map_index=3, try_number=2
    )
    return {"ti": ti, "exception": error}


def _failures() -> list[tuple[str, dict[str, object]]]:
    ctx = HubContext.open()
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(audit_event.c.object_ref, audit_event.c.detail).where(
                audit_event.c.action == "airflow.task_failed"
            )
        ).all()
        assert AuditLog(conn).verify().problem is None
    ctx.close()
    return [(ref, json.loads(detail)) for ref, detail in rows]


def test_a_hub_error_is_recorded_with_its_reason() -> None:
    HubContext.open(migrate=True).close()
    cause = ConfigurationError("sis source 12AB00", "no SIS is configured for this school")
    try:
        raise AirflowFailException(str(cause)) from cause
    except AirflowFailException as error:
        record_failure(_context(error))
    [(ref, detail)] = _failures()
    assert ref == "overstap_sis_pull.pull"
    assert detail["error"] == "ConfigurationError" and detail["try_number"] == 2
    assert detail["map_index"] == 3 and detail["run_id"] == "manual__1"
    assert "no SIS is configured" in str(detail["reason"])


def test_any_other_error_is_recorded_by_its_type_only() -> None:
    HubContext.open(migrate=True).close()
    # An unexpected error's message may hold anything (a driver echoing a row): not recorded.
    record_failure(_context(ValueError(f"duplicate key (bsn)=({BSN})")))
    [(_, detail)] = _failures()
    assert detail["error"] == "ValueError" and "reason" not in detail
    assert BSN not in json.dumps(detail)


@pytest.mark.parametrize("state", ["no schema", "no database"])
def test_the_callback_never_raises(
    state: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if state == "no database":
        monkeypatch.setenv("OVERSTAP_DATABASE_URL", f"sqlite:///{tmp_path}/missing/dir/hub.db")
    record_failure(_context(RuntimeError("boom")))  # must return, not raise
    assert "could not record the task failure" in caplog.text
