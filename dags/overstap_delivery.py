"""Queue approved dossiers and deliver the outbox to every institution, one mapped task each.

Thin (ARCHITECTURE.md): schedule, retries and fan-out here, the work in `overstap.runtime.tasks`.
Message-level retries live in the outbox (backoff with jitter, dead letters); Airflow's retries
cover a task that could not run at all. The logical date is the approval date, so a backfill
replays approvals as they were. `dry_run` counts what would be approved, queued and sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from overstap.runtime import policy, tasks


@dag(
    dag_id="overstap_delivery",
    # Office hours: receivers' SOAP services and SFTP drops.
    schedule=policy.schedule("overstap_delivery", "*/15 6-20 * * *"),
    start_date=datetime(2026, 8, 1),
    catchup=False,
    max_active_runs=1,
    tags=["overstap", "delivery"],
    default_args=policy.default_args(),
    params=policy.dry_run_params(),
    doc_md=__doc__,
)
def overstap_delivery() -> None:
    @task
    def queue(ds: str | None = None, params: dict[str, Any] | None = None) -> dict[str, int]:
        day = ds or datetime.now().date().isoformat()
        return tasks.queue_dossiers(day, policy.dry_run(params))

    queue() >> policy.deliver_to_receivers()


overstap_delivery()
