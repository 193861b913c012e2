"""The DAG files: they import cleanly and follow the policy, and they run with `dag.test()`.

DAG runs happen in a subprocess with its own AIRFLOW_HOME (Airflow reads its configuration once
per process) against a migrated Airflow SQLite database and a hub loaded with a small region.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
BIN = Path(sys.executable).parent


def _env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OVERSTAP_HOME": str(tmp / "home"),
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__PARALLELISM": "2",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _python(env: dict[str, str], code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter; `args` arrive as sys.argv[1:]."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("airflow")
    env = _env(tmp)
    migrated = subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return env


def test_dagbag_imports_every_dag_and_follows_the_policy(airflow_env: dict[str, str]) -> None:
    done = _python(
        airflow_env,
        """
        import json, sys, time
        from pathlib import Path
        from airflow.dag_processing.dagbag import DagBag
        out = {}
        for path in sorted(Path(sys.argv[1]).glob("*.py")):
            started = time.perf_counter()
            bag = DagBag(dag_folder=str(path))
            seconds = time.perf_counter() - started
            out[path.name] = {
                "errors": {k: str(v)[:500] for k, v in bag.import_errors.items()},
                "seconds": seconds,
                "dags": {
                    d.dag_id: {
                        "tags": sorted(d.tags),
                        "retries": [t.retries for t in d.tasks],
                    }
                    for d in bag.dags.values()
                },
            }
        print(json.dumps(out))
        """,
        str(DAGS),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    files = json.loads(done.stdout.strip().splitlines()[-1])
    assert files, "no DAG files found"
    for name, info in files.items():
        assert info["errors"] == {}, name
        assert info["dags"], f"{name} defines no DAG"
        # The first file pays for importing Airflow itself; the rest must be quick to parse.
        assert info["seconds"] < 5.0, (name, info["seconds"])
        for dag_id, dag in info["dags"].items():
            assert "overstap" in dag["tags"], dag_id
            assert min(dag["retries"]) >= 2, dag_id


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
    setup = _python(
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
    run = _python(
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
    counts = _python(
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
        print(json.dumps({"pulls": rows, "students": students, "chain": ok}))
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
