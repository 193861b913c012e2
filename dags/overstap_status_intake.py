"""Take in the status files that mbo institutions leave on SFTP, one mapped task each.

Thin (ARCHITECTURE.md): schedule, retries and fan-out here, the work in `overstap.runtime.tasks`.
Every file is taken in once (its digest is in the audit chain) and moved to the archive folder,
so a retried or overlapping run does no harm; a rejected file is archived with `.rejected` and
counted, not a task failure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from overstap.runtime import tasks


@dag(
    dag_id="overstap_status_intake",
    schedule="*/15 6-22 * * *",  # institutions write status files during the working day
    start_date=datetime(2026, 8, 1),
    catchup=False,
    max_active_runs=1,
    tags=["overstap", "statuses"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
    },
    doc_md=__doc__,
)
def overstap_status_intake() -> None:
    @task
    def institutions() -> list[str]:
        return tasks.sftp_intake_recipients()

    # A few at a time: the SFTP servers are the institutions'.
    @task(max_active_tis_per_dagrun=4)
    def take_in(recipient: str) -> dict[str, Any]:
        return tasks.take_in_statuses(recipient)

    take_in.expand(recipient=institutions())


overstap_status_intake()
