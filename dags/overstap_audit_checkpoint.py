"""Every hour: sign the audit chain head with the hub's key (a checkpoint), so an auditor can
check later, without trusting the hub's operators, that no record before it was changed,
removed or added. Nothing is signed when nothing happened since the last checkpoint.

Thin (ARCHITECTURE.md): the work is in `overstap.runtime.tasks.audit_checkpoint`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from overstap.runtime import policy, tasks


@dag(
    dag_id="overstap_audit_checkpoint",
    schedule=policy.schedule("overstap_audit_checkpoint", "@hourly"),
    start_date=datetime(2026, 8, 1),
    catchup=False,
    max_active_runs=1,
    tags=["overstap", "audit"],
    default_args=policy.default_args(retry_delay=timedelta(minutes=5)),
    params=policy.dry_run_params(),
    doc_md=__doc__,
)
def overstap_audit_checkpoint() -> None:
    @task
    def checkpoint(params: dict[str, Any] | None = None) -> dict[str, object]:
        return tasks.audit_checkpoint(policy.dry_run(params))

    checkpoint()


overstap_audit_checkpoint()
