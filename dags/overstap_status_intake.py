"""Take in the status files that mbo institutions leave on SFTP, one mapped task each.

Thin (ARCHITECTURE.md): schedule, retries and fan-out here, the work in `overstap.runtime.tasks`.
Every file is taken in once (its digest is in the audit chain) and moved to the archive folder,
so a retried or overlapping run does no harm; a rejected file is archived with `.rejected` and
counted, not a task failure. Statuses sent by SOAP arrive at the hub's MeldStatus service
(`overstap serve`), not here. `dry_run` counts the files waiting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from overstap.runtime import policy, tasks


@dag(
    dag_id="overstap_status_intake",
    # Institutions write status files during the working day.
    schedule=policy.schedule("overstap_status_intake", "*/15 6-22 * * *"),
    start_date=datetime(2026, 8, 1),
    catchup=False,
    max_active_runs=1,
    tags=["overstap", "statuses"],
    default_args=policy.default_args(),
    params=policy.dry_run_params(),
    doc_md=__doc__,
)
def overstap_status_intake() -> None:
    @task
    def institutions() -> list[str]:
        return tasks.sftp_intake_recipients()

    # A few at a time: the SFTP servers are the institutions'.
    @task(max_active_tis_per_dagrun=4)
    def take_in(recipient: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return tasks.take_in_statuses(recipient, policy.dry_run(params))

    take_in.expand(recipient=institutions())


overstap_status_intake()
