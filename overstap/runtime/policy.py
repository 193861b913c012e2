"""What every hub DAG shares: retries, the failure callback, the dry-run parameter, schedules.

One place, so the DAG files stay a schedule and a task order, and the policy test holds them all
to the same rules (tags, retries >= 2, a failure callback on every task, a `dry_run` param).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow.sdk import Param, task

from overstap.runtime import tasks
from overstap.runtime.schedules import schedule
from overstap.runtime.tasks import record_failure

__all__ = ["default_args", "deliver_to_receivers", "dry_run", "dry_run_params", "schedule"]


def default_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "on_failure_callback": record_failure,
    }
    args.update(overrides)
    return args


def dry_run_params() -> dict[str, Param]:
    return {
        "dry_run": Param(
            False,
            type="boolean",
            description="Check configuration and count what would happen; change and send nothing.",
        )
    }


def dry_run(params: Mapping[str, Any] | None) -> bool:
    return bool((params or {}).get("dry_run", False))


def deliver_to_receivers() -> Any:
    """The delivery end of a DAG, shared by dossier delivery and signals: `recipients` (every
    receiver with messages due) and `deliver` mapped over them, a few receivers at a time (their
    servers are theirs, not ours). Returns `recipients`' output, to order it after the tasks
    that queue. Call inside a DAG."""

    @task(task_id="recipients")
    def recipients() -> list[str]:
        return tasks.delivery_recipients()

    @task(task_id="deliver", max_active_tis_per_dagrun=4)
    def deliver(recipient: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return tasks.deliver(recipient, dry_run(params))

    targets = recipients()
    deliver.expand(recipient=targets)
    return targets
