"""What every hub DAG shares: retries, the failure callback, the dry-run parameter, schedules.

One place, so the DAG files stay a schedule and a task order, and the policy test holds them all
to the same rules (tags, retries >= 2, a failure callback on every task, a `dry_run` param).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow.sdk import Param

from overstap.runtime.schedules import schedule
from overstap.runtime.tasks import record_failure

__all__ = ["default_args", "dry_run", "dry_run_params", "schedule"]


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
