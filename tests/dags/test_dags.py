"""The DAG files: they import cleanly and follow the policy, and they run with `dag.test()`.

DAG runs happen in a subprocess with its own AIRFLOW_HOME (Airflow reads its configuration once
per process) against a migrated Airflow SQLite database and a hub loaded with a small region.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from airflow_run import BIN, DAGS, migrate, region_with_pki, run_python
from airflow_run import airflow_env as _env


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("airflow")
    env = _env(tmp)
    migrate(env)
    return env


def test_dagbag_imports_every_dag_and_follows_the_policy(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "no-dags"
    empty.mkdir()
    done = run_python(
        airflow_env,
        """
        import json, os, sys, time
        from pathlib import Path
        from airflow.dag_processing.dagbag import DagBag
        DagBag(dag_folder=sys.argv[2])  # Airflow's own machinery warm: an empty folder
        airflow_home = os.environ["AIRFLOW_HOME"]
        events = []
        def watch(event, args):
            # I/O while a DAG file (and what it imports of ours) is parsed: sockets, processes,
            # database connections, new directories, files other than code. Airflow's own
            # metadata database (under AIRFLOW_HOME) is Airflow's business.
            if event.startswith(("socket.", "subprocess.", "os.system", "os.posix_spawn")):
                events.append(event)
            elif event in ("sqlite3.connect", "os.mkdir", "open"):
                target = str(args[0]) if args and args[0] is not None else ""
                if event == "open" and (
                    not isinstance(args[0], str)
                    or target.endswith((".py", ".pyc", ".so", ".pth", ".typed"))
                    or "/site-packages/" in target or "/lib/python3" in target
                ):
                    return
                if target.startswith(airflow_home) or target in ("", ":memory:"):
                    return
                events.append(f"{event} {target}")
        sys.addaudithook(watch)
        out = {}
        for path in sorted(Path(sys.argv[1]).glob("*.py")):
            events.clear()
            seconds = []
            for _ in range(3):  # the best of three: what a warm dag-processor pays per parse
                started = time.perf_counter()
                bag = DagBag(dag_folder=str(path))
                seconds.append(time.perf_counter() - started)
            out[path.name] = {
                "errors": {k: str(v)[:500] for k, v in bag.import_errors.items()},
                "seconds": min(seconds),
                "io": sorted(set(events)),
                "dags": {
                    d.dag_id: {
                        "tags": sorted(d.tags),
                        "retries": [t.retries for t in d.tasks],
                        "callbacks": [bool(t.on_failure_callback) for t in d.tasks],
                        "params": sorted(d.params.keys()),
                    }
                    for d in bag.dags.values()
                },
            }
        print(json.dumps(out))
        """,
        str(DAGS),
        str(empty),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    files = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(files) == 5, sorted(files)
    for name, info in files.items():
        assert info["errors"] == {}, name
        assert info["dags"], f"{name} defines no DAG"
        assert info["seconds"] < 1.0, (name, info["seconds"])
        assert info["io"] == [], (name, info["io"])
        for dag_id, dag in info["dags"].items():
            assert "overstap" in dag["tags"], dag_id
            assert min(dag["retries"]) >= 2, dag_id
            assert all(dag["callbacks"]), dag_id
            assert "dry_run" in dag["params"], dag_id


def test_a_registry_schedule_reaches_the_dag(airflow_env: dict[str, str]) -> None:
    env = {**airflow_env, "OVERSTAP_SCHEDULE_SIGNALS": "30 4 * * 1-5"}
    done = run_python(
        env,
        """
        import sys
        from airflow.dag_processing.dagbag import DagBag
        dags = DagBag(dag_folder=sys.argv[1]).dags
        print(dags["overstap_signals"].schedule + "|" + dags["overstap_delivery"].schedule)
        """,
        str(DAGS),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The registry's schedule for signals; the file's default for delivery.
    assert done.stdout.strip().splitlines()[-1] == "30 4 * * 1-5|*/15 6-20 * * *"


def test_sis_pull_dag_pulls_every_school_and_fails_a_misconfigured_one_without_retrying(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**airflow_env, "OVERSTAP_HOME": str(tmp_path / "home")}
    overstap = str(BIN / "overstap")
    region = tmp_path / "region"
    for args in (
        ("region", "generate", "--students", "300", "--seed", "12", "--out", str(region)),
        ("db", "upgrade"),
    ):
        done = subprocess.run(
            [overstap, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
    # Register parties and sources without importing students: the DAG imports them.
    setup = run_python(
        env,
        """
        import sys
        from pathlib import Path
        from overstap.bootstrap import HubContext
        from overstap.region.model import load_region
        from overstap.services.sis_sources import region_sources, save_sources
        from overstap.ports import SisSchool
        from overstap.store.students import save_parties
        region = load_region(Path(sys.argv[1]))
        ctx = HubContext.open()
        with ctx.engine.begin() as conn:
            save_parties(conn, region.regions, region.municipalities, region.vo_schools, region.mbo_institutions)
        sources = region_sources(Path(sys.argv[1]))
        broken = SisSchool(sources[0].location, sources[0].mapping, "file", {"folder": "/nonexistent/{location}"})
        save_sources(ctx, [broken, *sources[1:]])
        print(broken.location)
        """,
        str(region),
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    broken = setup.stdout.strip().splitlines()[-1]
    started = time.monotonic()
    run = run_python(
        env,
        """
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder=sys.argv[1]).dags["overstap_sis_pull"]
        dr = dag.test()
        print(json.dumps({"state": str(dr.state), "tis": [[ti.task_id, ti.map_index, str(ti.state), ti.try_number] for ti in dr.get_task_instances()]}))
        """,
        str(DAGS / "overstap_sis_pull.py"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert time.monotonic() - started < 120  # no retry delays for a configuration error
    result = json.loads(run.stdout.strip().splitlines()[-1])
    pulls = [ti for ti in result["tis"] if ti[0] == "pull"]
    assert len(pulls) >= 2
    states = sorted(ti[2] for ti in pulls)
    assert states.count("failed") == 1 and states.count("success") == len(pulls) - 1, result
    assert [ti[3] for ti in pulls if ti[2] == "failed"] == [1]  # AirflowFailException: no retry
    assert "failed" in result["state"]
    counts = run_python(
        env,
        """
        import json
        from sqlalchemy import select, func
        from overstap.bootstrap import HubContext
        from overstap.store.tables import sis_pull, student
        from overstap.store.audit_log import AuditLog
        ctx = HubContext.open()
        with ctx.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(select(sis_pull.c.school, sis_pull.c.status, sis_pull.c.records_in, sis_pull.c.quarantined)).mappings()]
            students = conn.execute(select(func.count()).select_from(student)).scalar_one()
            ok = AuditLog(conn).verify().problem is None
            failed = [(r.object_ref, r.detail) for r in AuditLog(conn).records() if r.action == "airflow.task_failed"]
        print(json.dumps({"pulls": rows, "students": students, "chain": ok, "failed": failed}))
        """,
    )
    assert counts.returncode == 0, counts.stderr[-3000:]
    hub = json.loads(counts.stdout.strip().splitlines()[-1])
    by_school = {p["school"]: p for p in hub["pulls"]}
    assert by_school[broken]["status"] == "failed"
    good = [p for s, p in by_school.items() if s != broken]
    assert all(p["status"] == "ok" and p["quarantined"] == 0 for p in good)
    assert hub["students"] == sum(p["records_in"] for p in good) > 0
    assert hub["chain"]
    # The failure callback put the failed task in the audit chain, with the hub's reason.
    assert len(hub["failed"]) == 1, hub["failed"]
    ref, detail = hub["failed"][0]
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert ref == "overstap_sis_pull.pull" and detail["error"] == "ConfigurationError"
    assert detail["try_number"] == 1 and "reason" in detail


def _errors(log: str) -> list[str]:
    """The error lines of a task log, for a failure message."""
    return [line[:300] for line in log.splitlines() if "Error" in line or "error" in line][-8:]


def test_delivery_dag_queues_approved_dossiers_and_delivers_them_to_the_reference_peers(
    airflow_env: dict[str, str], tmp_path: Path, sshd_bin: str
) -> None:
    """A synthetic region, approvals as on 1 April: the delivery DAG queues every approved,
    valid dossier and delivers it to the first institution by SOAP (the reference mbo endpoint,
    mutual TLS) and to the second by SFTP (OpenSSH)."""
    from sshd import route_settings, start_sshd

    from connectors.reference.mbo_soap import MboSoapServer
    from overstap.domain.identifiers import Oin
    from overstap.region.model import load_region
    from overstap.services.pki import DEV_HUB_OIN

    env = {**airflow_env, "OVERSTAP_HOME": str(tmp_path / "home")}
    region_dir = tmp_path / "region"
    region_with_pki(env, region_dir, students=200, seed=17)
    region = load_region(region_dir)
    soap_mbo, sftp_mbo = region.mbo_institutions[:2]
    pki_dir = tmp_path / "home" / "pki"
    passphrase = (pki_dir / ".passphrase").read_bytes().strip()
    sshd = start_sshd(sshd_bin, tmp_path / "sshd", tmp_path / "sftp-root")
    (sshd.root / "in").mkdir()
    try:
        with MboSoapServer(
            pki_dir, f"mbo-{soap_mbo.brin}", passphrase, hub_oin=Oin(DEV_HUB_OIN)
        ) as mbo:
            routes = run_python(
                env,
                """
                import json, sys
                from overstap.bootstrap import HubContext
                from overstap.ports import Route
                from overstap.services.delivery import save_routes
                routes = [Route(r["brin"], r["transport"], r["settings"]) for r in json.loads(sys.argv[1])]
                save_routes(HubContext.open(), routes)
                """,
                json.dumps(
                    [
                        {
                            "brin": str(soap_mbo.brin),
                            "transport": "soap",
                            "settings": {
                                "endpoint": mbo.url,
                                "oin": str(soap_mbo.oin),
                                "timeout": "10",
                            },
                        },
                        {
                            "brin": str(sftp_mbo.brin),
                            "transport": "sftp",
                            "settings": route_settings(sshd, str(sftp_mbo.oin)),
                        },
                    ]
                ),
            )
            assert routes.returncode == 0, routes.stderr[-2000:]
            run = run_python(
                env,
                """
                import json, sys
                from datetime import datetime, UTC
                from airflow.dag_processing.dagbag import DagBag
                dag = DagBag(dag_folder=sys.argv[1]).dags["overstap_delivery"]
                dr = dag.test(logical_date=datetime(2027, 4, 1, 12, tzinfo=UTC))
                print(json.dumps({"state": str(dr.state), "tis": [[ti.task_id, ti.map_index, str(ti.state)] for ti in dr.get_task_instances()]}))
                """,
                str(DAGS / "overstap_delivery.py"),
            )
            assert run.returncode == 0, run.stderr[-3000:]
            result = json.loads(run.stdout.strip().splitlines()[-1])
            assert "success" in result["state"], (result, _errors(run.stderr))
            soap_received = len(mbo.received)
    finally:
        sshd.stop()
    counts = run_python(
        env,
        """
        import json
        from collections import Counter
        from sqlalchemy import select
        from overstap.bootstrap import HubContext
        from overstap.store.tables import outbox, dossier
        ctx = HubContext.open()
        with ctx.engine.connect() as conn:
            by = Counter((r.recipient, r.state) for r in conn.execute(select(outbox)))
            states = Counter(r.state for r in conn.execute(select(dossier)))
        print(json.dumps({"outbox": {f"{k[0]}:{k[1]}": v for k, v in by.items()}, "dossiers": states}))
        """,
    )
    assert counts.returncode == 0, counts.stderr[-2000:]
    hub = json.loads(counts.stdout.strip().splitlines()[-1])
    delivered_soap = hub["outbox"].get(f"{soap_mbo.brin}:delivered", 0)
    delivered_sftp = hub["outbox"].get(f"{sftp_mbo.brin}:delivered", 0)
    assert delivered_soap > 0 and delivered_sftp > 0, hub
    assert not [k for k in hub["outbox"] if not k.endswith(":delivered")], hub
    assert soap_received == delivered_soap
    files = [p for p in (sshd.root / "in").iterdir() if p.suffix == ".p7m"]
    assert len(files) == delivered_sftp
    assert list((sshd.root / "in").glob("manifest-*.xml"))
    assert hub["dossiers"].get("afgeleverd", 0) == delivered_soap + delivered_sftp
