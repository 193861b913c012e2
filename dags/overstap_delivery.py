"""Queue approved dossiers and deliver the outbox to every institution, one mapped task each.

Thin (ARCHITECTURE.md): schedule, retries and fan-out here, the work in `overstap.runtime.tasks`.
Message-level retries live in the outbox (backoff with jitter, dead letters); Airflow's retries
cover a task that could not run at all. The logical date is the approval date, so a backfill
replays approvals as they were.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from overstap.runtime import tasks


@dag(
    dag_id="overstap_delivery",
    schedule="*/15 6-20 * * *",  # office hours: receivers' SOAP services and SFTP drops
    start_date=datetime(2026, 8, 1),
    catchup=False,
    max_active_runs=1,
    tags=["overstap", "delivery"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
    },
    doc_md=__doc__,
)
def overstap_delivery() -> None:
    @task
    def queue(ds: str | None = None) -> dict[str, int]:
        return tasks.queue_dossiers(ds or datetime.now().date().isoformat())

    @task
    def recipients() -> list[str]:
        return tasks.delivery_recipients()

    @task(max_active_tis_per_dagrun=4)
    def deliver(recipient: str) -> dict[str, Any]:
        return tasks.deliver(recipient)

    queued = queue()
    targets = recipients()
    queued >> targets
    deliver.expand(recipient=targets)


overstap_delivery()
