"""Pull every registered school's SIS export into the hub, one mapped task per school.

Thin by design (ARCHITECTURE.md): the schedule, retries and the fan-out live here; the work is
`overstap.runtime.tasks`. Nothing is read at parse time: the school list is a task. The logical
date picks the school year pulled into; `dry_run` checks each school's source, connector and
mapping without reading the SIS.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from overstap.runtime import policy, tasks


@dag(
    dag_id="overstap_sis_pull",
    # School days, before the first lesson: exports are written overnight.
    schedule=policy.schedule("overstap_sis_pull", "0 5 * * 1-5"),
    start_date=datetime(2026, 8, 1),
    catchup=False,
    max_active_runs=1,
    tags=["overstap", "sis"],
    default_args=policy.default_args(
        retries=3,
        retry_delay=timedelta(minutes=2),
        max_retry_delay=timedelta(minutes=30),
    ),
    params=policy.dry_run_params(),
    doc_md=__doc__,
)
def overstap_sis_pull() -> None:
    @task
    def schools() -> list[str]:
        return tasks.sis_schools()

    # A handful of schools at a time: the SIS servers are the schools', not ours.
    @task(max_active_tis_per_dagrun=4)
    def pull(
        location: str, ds: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return tasks.pull_school(location, ds, policy.dry_run(params))

    pull.expand(location=schools())


overstap_sis_pull()
