"""Daily signals to municipalities: raise and withdraw on the logical date, queue one file per
municipality, deliver the outbox to each (one mapped task per receiver).

Thin (ARCHITECTURE.md): the work is in `overstap.runtime.tasks`. The logical date is the signal
date, so `airflow dags backfill` over a school year raises every signal on the day it would
have been raised live (the rules read each registration as it stood that day). Runs go one at
a time and in date order: a withdrawal must follow its raise.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from overstap.runtime import tasks


@dag(
    dag_id="overstap_signals",
    schedule="0 5 * * *",  # before office hours: a municipality finds the day's file at 9
    start_date=datetime(2026, 8, 1),
    catchup=False,
    max_active_runs=1,
    tags=["overstap", "signals"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
    doc_md=__doc__,
)
def overstap_signals() -> None:
    @task
    def raise_signals(ds: str | None = None) -> dict[str, object]:
        return tasks.raise_signals(ds or datetime.now().date().isoformat())

    @task
    def queue_files(ds: str | None = None) -> dict[str, object]:
        return tasks.queue_signal_files(ds or datetime.now().date().isoformat())

    @task
    def recipients() -> list[str]:
        return tasks.delivery_recipients()

    @task(max_active_tis_per_dagrun=4)
    def deliver(recipient: str) -> dict[str, Any]:
        return tasks.deliver(recipient)

    targets = recipients()
    raise_signals() >> queue_files() >> targets
    deliver.expand(recipient=targets)


overstap_signals()
