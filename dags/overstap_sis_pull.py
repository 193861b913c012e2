"""Pull every registered school's SIS export into the hub, one mapped task per school.

Thin by design (ARCHITECTURE.md): the schedule, retries and the fan-out live here; the work is
`overstap.runtime.tasks`. Nothing is read at parse time: the school list is a task.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from overstap.runtime import tasks


@dag(
    dag_id="overstap_sis_pull",
    schedule="0 5 * * 1-5",  # school days, before the first lesson: exports are written overnight
    start_date=datetime(2026, 8, 1),
    catchup=False,
    max_active_runs=1,
    tags=["overstap", "sis"],
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    },
    doc_md=__doc__,
)
def overstap_sis_pull() -> None:
    @task
    def schools() -> list[str]:
        return tasks.sis_schools()

    # A handful of schools at a time: the SIS servers are the schools', not ours.
    @task(max_active_tis_per_dagrun=4)
    def pull(location: str) -> dict[str, Any]:
        return tasks.pull_school(location)

    pull.expand(location=schools())


overstap_sis_pull()
