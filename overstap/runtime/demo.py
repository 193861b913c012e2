"""`make demo`: a synthetic region's whole school year through Airflow, on embedded defaults.

Everything lives in `$OVERSTAP_HOME/demo` (default `.overstap/demo`), started afresh on each run
so the report always describes one clean year: a generated region, a development PKI, the hub's
SQLite store, Airflow's own SQLite database, and the local peers (OpenSSH when installed, the
reference mbo SOAP services, the hub's status service), stopped at the end. Nothing needs root.

The report compares the hub's end state with the scenarios' ground truth and exits non-zero
when they differ, a DAG run failed or the audit chain does not verify.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

DEMO_USER = "auditor"
MARKER = ".overstap-demo"


def run_demo(
    console: Console,
    *,
    students: int,
    seed: int,
    progress_bar: Callable[..., AbstractContextManager[Callable[[int], None]]],
) -> int:
    base = Path(os.environ.get("OVERSTAP_HOME") or ".overstap").resolve()
    home = base / "demo"
    marker = home / MARKER
    if home.exists():
        # Only a directory the demo made is removed: OVERSTAP_HOME=~ must not cost ~/demo.
        if not marker.is_file() and any(home.iterdir()):
            console.print(
                f"[bold red]error:[/] {home} exists and was not made by the demo; "
                "move it or set OVERSTAP_HOME to another directory"
            )
            return 2
        shutil.rmtree(home)  # one clean year per run
    home.mkdir(parents=True)
    marker.write_text("made by `overstap demo`; removed and made again on every run\n")
    # Before anything imports Airflow or opens the hub: both read their settings from here. No
    # setting of another Airflow (its database, config file, connections, secrets backend) may
    # reach the demo's, or the demo would migrate, fill and overwrite that Airflow.
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_", "AIRFLOW__")) or name == "AIRFLOW_CONFIG":
            del os.environ[name]
    from overstap.runtime.year import airflow_environment, migrate_airflow

    env = {"OVERSTAP_HOME": str(home), **airflow_environment(home / "airflow")}
    # The report says what failed; Airflow's warnings (a connection field too short to mask)
    # would only break up the progress bars.
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    os.environ.update(env)
    os.environ.pop("OVERSTAP_DATABASE_URL", None)  # embedded defaults: SQLite in the home
    os.environ.pop("OVERSTAP_PKI_DIR", None)

    from connectors.reference.sftp_server import find_sshd
    from overstap.bootstrap import HubContext
    from overstap.region.generate import generate_region
    from overstap.runtime.year import run_year
    from overstap.services.pki import issue_dev_pki
    from overstap.store import migrate

    console.rule("[bold]Overstap demo: one school year through Airflow")
    console.print(f"home {home}")
    region_dir = home / "region"
    title = f"generating a synthetic region of {students:,} students (seed {seed})"
    _say(console, title)
    with progress_bar("students", total=students) as advance:
        generate_region(region_dir, students=students, seed=seed, progress=advance)
    ctx = HubContext.open(require_schema=False)
    _say(console, "issuing the development PKI (a CA, certificates for the hub and each party)")
    issue_dev_pki(ctx.settings, region_dir)
    _say(console, "migrating the hub's database and Airflow's")
    migrate.upgrade(ctx.engine)
    migrate_airflow(env)
    # OVERSTAP_DEMO_SFTP=folders serves SFTP parties from folders even where OpenSSH is installed.
    sshd = None if os.environ.get("OVERSTAP_DEMO_SFTP") == "folders" else find_sshd()
    _say(
        console,
        "starting the peers: "
        + ("OpenSSH for SFTP parties" if sshd else "folders for SFTP parties (no sshd found)")
        + ", reference mbo SOAP services, the hub's status service",
    )
    _quiet_airflow()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("school year", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=f"school year: {what}", completed=done, total=total)

        report = run_year(ctx, region_dir, home, sshd_bin=sshd, progress=progress)
    password = secrets.token_urlsafe(12)
    from overstap.web.accounts import Accounts

    Accounts(home / "web-users.json").add(DEMO_USER, "auditor", password)
    ctx.close()
    return _report(console, report, home, password)


def _quiet_airflow() -> None:
    """Airflow's one-time notices (a deprecated test client import, a connection field too
    short to mask) say nothing to someone watching the demo."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    for name in (
        "airflow._shared.secrets_masker.secrets_masker",
        "airflow.sdk._shared.secrets_masker.secrets_masker",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


def _say(console: Console, text: str) -> None:
    console.print(f"[bold cyan]>[/] {text}")


def _report(console: Console, report: object, home: Path, password: str) -> int:
    from overstap.runtime.year import YearReport

    assert isinstance(report, YearReport)
    runs = Counter(r.dag_id for r in report.runs)
    console.print(
        f"{len(report.runs)} DAG runs in {report.seconds:.0f} s ("
        + ", ".join(f"{d.removeprefix('overstap_')} {n}" for d, n in sorted(runs.items()))
        + f"), {len(report.failed_runs)} failed; statuses sent by the institutions: "
        + ", ".join(f"{n:,} by {ch}" for ch, n in sorted(report.statuses_sent.items()))
    )
    standings = Table("standing at the end of the year", "hub", "expected", title="Students")
    observed, expected = report.observed.standing_counts(), report.expected.standing_counts()
    for standing in sorted(observed.keys() | expected.keys(), key=lambda s: (-expected[s], s)):
        standings.add_row(standing, f"{observed[standing]:,}", f"{expected[standing]:,}")
    console.print(standings)
    signals = Table("municipality", "signals delivered", "expected", title="Signals")
    got, want = (
        report.observed.signals_per_municipality(),
        report.expected.signals_per_municipality(),
    )
    for gemeente in sorted(got.keys() | want.keys()):
        signals.add_row(gemeente, str(got[gemeente]), str(want[gemeente]))
    kinds = Counter(kind for (_, kind), n in report.observed.signals.items() for _ in range(n))
    console.print(signals)
    console.print("by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    deliveries = Table("message", "channel", "state", "count", title="Deliveries")
    for (kind, channel, state), n in sorted(report.deliveries.items()):
        deliveries.add_row(kind, channel, state, f"{n:,}")
    console.print(deliveries)
    if report.audit_problem is None:
        console.print(
            f"[bold green]audit chain OK[/]: {report.audit_records:,} records, "
            f"{report.checkpoints} signed checkpoints hold"
        )
    else:
        console.print(f"[bold red]audit chain BROKEN[/]: {report.audit_problem}")
    for run in report.failed_runs:
        console.print(f"[bold red]failed run[/] {run.dag_id} {run.day}: {run.tasks}")
    for difference in report.differences[:20]:
        console.print(f"[bold red]differs from the known truth[/]: {difference}")
    if report.ok:
        console.print(
            "[bold green]The hub's end state matches the region's known truth[/] "
            "(every student's standing, every municipality's signals)."
        )
    console.print(
        "\nLook further:\n"
        f"  the registry the demo wrote:   {home / 'registry.yaml'}\n"
        f"  files at the peers:            {home / 'drops'}\n"
        f"  the audit chain:               OVERSTAP_HOME={home} .venv/bin/overstap audit verify\n"
        f"  Airflow with these runs and the audit view (/overstap/, user {DEMO_USER}, "
        f"password {password}):\n"
        f"    OVERSTAP_HOME={home} AIRFLOW_HOME={home / 'airflow'} make airflow"
    )
    return 0 if report.ok else 1
