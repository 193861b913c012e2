"""A synthetic region's whole school year through Airflow, against local reference peers.

What `make demo` and the full-cycle test run. In one process, on embedded defaults:

1. peers start: an OpenSSH sshd as every SFTP party's server (institutions' drops and status
   outboxes, municipalities' drops; without an sshd binary, folders instead), a reference mbo
   SOAP service per SOAP institution, the hub's MeldStatus service, and each institution's status
   sender;
2. the region's registry file is written for those peers (routes through Airflow Connections)
   and applied, its connections synced into Airflow; the schools' records are loaded;
3. every milestone of the year (`overstap.services.year.milestones`), in date order, runs the
   hub's DAGs with `dag.test()` on that logical date: the SIS pull (first day only), dossier
   delivery, the institutions' statuses of the days since the last milestone (posted by SOAP
   or left as files, then the status intake DAG), signals, and the audit checkpoint;
4. the hub's end state is held against the scenarios' ground truth.

Airflow must be configured before this module is imported (AIRFLOW_HOME and friends): the
caller (`overstap demo`, the test) sets the environment and runs `airflow db migrate`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time as clock
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import yaml

from connectors.reference.region_peers import running_peers
from overstap.bootstrap import HubContext
from overstap.pki import PkiLayout
from overstap.region.model import load_region
from overstap.services.pki import hub_party
from overstap.services.year import (
    YearOutcome,
    deliveries_per_channel,
    expected_year,
    milestones,
    observed_year,
    statuses_between,
    year_of_statuses,
)

ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = ROOT / "dags"
DAG_ORDER = (
    "overstap_sis_pull",
    "overstap_delivery",
    "overstap_status_intake",
    "overstap_signals",
    "overstap_audit_checkpoint",
)

log = logging.getLogger(__name__)


def airflow_environment(airflow_home: Path) -> dict[str, str]:
    """The settings a one-process Airflow needs (set them before Airflow is imported)."""
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def migrate_airflow(env: dict[str, str]) -> None:
    """`airflow db migrate` for the Airflow of `env` (a no-op when it is current)."""
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run(
        [str(airflow), "db", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed: {done.stderr[-2000:]}")


# --- Airflow -------------------------------------------------------------------------------------


@dataclass
class DagRunResult:
    dag_id: str
    day: date
    state: str
    tasks: list[tuple[str, int, str]]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.state.endswith("success")


class AirflowYear:
    """The hub's DAGs, parsed once, run with `dag.test()` (in this process, on Airflow's DB)."""

    def __init__(self) -> None:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(DAGS_FOLDER))
        if bag.import_errors:
            raise RuntimeError(f"DAG import errors: {bag.import_errors}")
        self.dags = bag.dags

    def run(self, dag_id: str, day: date, conf: dict[str, Any] | None = None) -> DagRunResult:
        started = clock.perf_counter()
        dag = self.dags[dag_id]
        run = dag.test(logical_date=datetime.combine(day, time(5, 0), tzinfo=UTC), run_conf=conf)
        tasks = sorted((ti.task_id, ti.map_index, str(ti.state)) for ti in run.get_task_instances())
        return DagRunResult(dag_id, day, str(run.state), tasks, clock.perf_counter() - started)


# --- the year ----------------------------------------------------------------------------------


@dataclass
class YearReport:
    region: str
    channel: str  # how SFTP parties were served: sftp (OpenSSH) or folder
    runs: list[DagRunResult] = field(default_factory=list)
    statuses_sent: Counter[str] = field(default_factory=Counter)
    expected: YearOutcome = field(default_factory=YearOutcome)
    observed: YearOutcome = field(default_factory=YearOutcome)
    deliveries: dict[tuple[str, str, str], int] = field(default_factory=dict)
    audit_records: int = 0
    audit_problem: str | None = None
    checkpoints: int = 0
    seconds: float = 0.0

    @property
    def failed_runs(self) -> list[DagRunResult]:
        return [r for r in self.runs if not r.ok]

    @property
    def differences(self) -> list[str]:
        return self.observed.differences(self.expected)

    @property
    def ok(self) -> bool:
        return not self.failed_runs and not self.differences and self.audit_problem is None


Progress = Callable[[str, int, int], None]  # (what, done, total)


def run_year(
    ctx: HubContext,
    region_dir: Path,
    workdir: Path,
    *,
    sshd_bin: str | None,
    progress: Progress = lambda what, done, total: None,
) -> YearReport:
    """Run the region's year through Airflow (see the module doc); the hub must be migrated, the
    PKI issued for the region and Airflow's database migrated."""
    from overstap.registry import load_registry
    from overstap.runtime.connections import sync_connections
    from overstap.services.region_load import load_region_into_hub
    from overstap.services.registry import apply_registry

    started = clock.perf_counter()
    region = load_region(region_dir)
    report = YearReport(region.code, "sftp" if sshd_bin else "folder")
    statuses = year_of_statuses(region_dir, f"{region.code}-status")
    last_event = max(
        [r.status_date for r in statuses] + [region.calendar.zomerlek_date], default=None
    )
    assert last_event is not None
    days = milestones(region.calendar, last_event)
    airflow = AirflowYear()
    with running_peers(ctx, region, workdir, sshd_bin=sshd_bin) as peers:
        load_region_into_hub(ctx, region_dir)
        registry_file = workdir / "registry.yaml"
        registry_file.write_text(
            yaml.safe_dump(peers.registry(region_dir), sort_keys=False, allow_unicode=True),
            encoding="utf-8",
        )
        registry = load_registry(registry_file)
        apply_registry(ctx, registry)
        sync_connections(registry.connections, os.environ)
        previous: date | None = None
        total = len(days)
        for index, day in enumerate(days):
            progress(f"{day}", index, total)
            dags = DAG_ORDER if index == 0 else DAG_ORDER[1:]
            for dag_id in dags:
                if dag_id == "overstap_status_intake":
                    news = list(statuses_between(statuses, previous, day))
                    report.statuses_sent += peers.send_statuses(news, day.isoformat())
                report.runs.append(airflow.run(dag_id, day))
            previous = day
        progress("done", total, total)
    until = days[-1]
    report.expected = expected_year(region_dir, until)
    report.observed = observed_year(ctx, region_dir)
    report.deliveries = deliveries_per_channel(ctx)
    _verify_audit(ctx, report)
    report.seconds = clock.perf_counter() - started
    return report


def _verify_audit(ctx: HubContext, report: YearReport) -> None:
    from overstap.crypto.trust import TrustStore
    from overstap.services.audit_checkpoints import verify_with_checkpoints

    trust = TrustStore.from_pem_file(PkiLayout(ctx.settings.pki_dir).trust_bundle_path)
    result = verify_with_checkpoints(ctx, trust, hub_party().oin)
    report.audit_records = result.chain.count
    report.checkpoints = result.checkpoints
    if result.problem is not None:
        report.audit_problem = f"record {result.problem.seq}: {result.problem.reason}"
