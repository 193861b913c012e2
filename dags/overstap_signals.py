"""Daily signals to municipalities: raise and withdraw on the logical date, queue one file per
municipality, deliver the outbox to each (one mapped task per receiver).

Thin (ARCHITECTURE.md): the work is in `overstap.runtime.tasks`. The logical date is the signal
date, so `airflow dags backfill` over a school year raises every signal on the day it would
have been raised live (the rules read each registration as it stood that day). Runs go one at
a time and in date order: a withdrawal must follow its raise. `dry_run` previews the day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from overstap.runtime import policy, tasks


@dag(
    dag_id="overstap_signals",
    # Before office hours: a municipality finds the day's file at 9.
    schedule=policy.schedule("overstap_signals", "0 5 * * *"),
    start_date=datetime(2026, 8, 1),
    catchup=False,
    max_active_runs=1,
    tags=["overstap", "signals"],
    default_args=policy.default_args(retry_delay=timedelta(minutes=2)),
    params=policy.dry_run_params(),
    doc_md=__doc__,
)
def overstap_signals() -> None:
    @task
    def raise_signals(
        ds: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, object]:
        day = ds or datetime.now().date().isoformat()
        return tasks.raise_signals(day, policy.dry_run(params))

    @task
    def queue_files(
        ds: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, object]:
        day = ds or datetime.now().date().isoformat()
        return tasks.queue_signal_files(day, policy.dry_run(params))

    raise_signals() >> queue_files() >> policy.deliver_to_receivers()


overstap_signals()
