"""The daily signals DAG runs with `dag.test()` on logical dates around a school year's deadline
and zomerlek date: each run raises what its date brings (a later date also raises what fell
between runs, with its own signal date), files reach each municipality's SFTP drop on a real
OpenSSH server, and the signals end delivered; the day before the deadline raises nothing.

Same setup as tests/dags/test_dags.py: a subprocess with its own AIRFLOW_HOME per run.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from airflow_run import BIN, DAGS, migrate, region_with_pki, run_python
from airflow_run import airflow_env as _env

TESTS = Path(__file__).resolve().parents[1]


def _dag_test(
    env: dict[str, str], day: date, name: str = "overstap_signals", *, dry_run: bool = False
) -> dict[str, Any]:
    run = run_python(
        env,
        """
        import json, sys
        from datetime import datetime, timezone
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder=sys.argv[1]).dags[sys.argv[3]]
        day = datetime.fromisoformat(sys.argv[2]).replace(hour=5, tzinfo=timezone.utc)
        dr = dag.test(logical_date=day, run_conf=json.loads(sys.argv[4]))
        print(json.dumps({"state": str(dr.state), "tis": [[ti.task_id, ti.map_index, str(ti.state)] for ti in dr.get_task_instances()]}))
        """,
        str(DAGS / f"{name}.py"),
        day.isoformat(),
        name,
        json.dumps({"dry_run": dry_run}),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    assert "success" in str(result["state"]), (result, run.stderr[-3000:])
    return result


def _hub_state(env: dict[str, str]) -> list[int]:
    """The audit head, the signals and the outbox: what any real signals run changes."""
    done = run_python(
        env,
        """
        import json
        from sqlalchemy import func, select
        from overstap.bootstrap import HubContext
        from overstap.store.tables import audit_head, outbox, signal
        with HubContext.open().engine.connect() as conn:
            print(json.dumps([
                conn.execute(select(audit_head.c.seq)).scalar() or 0,
                conn.execute(select(func.count()).select_from(signal)).scalar(),
                conn.execute(select(func.count()).select_from(outbox)).scalar(),
            ]))
        """,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    state: list[int] = json.loads(done.stdout.strip().splitlines()[-1])
    return state


def test_signals_dag_over_the_deadline_and_the_zomerlek_date(tmp_path: Path, sshd_bin: str) -> None:
    from sshd import route_settings, start_sshd

    from overstap.region import iter_students, load_region

    env = _env(tmp_path)
    migrate(env)
    region_dir = tmp_path / "region"
    region_with_pki(env, region_dir, students=300, seed=61)
    region = load_region(region_dir)
    calendar = region.calendar
    sshd = start_sshd(sshd_bin, tmp_path / "sshd", tmp_path / "sftp-root")
    gemeenten = [str(m.code) for m in region.municipalities]
    for g in gemeenten:
        (sshd.root / "in" / g).mkdir(parents=True)
    try:
        setup = run_python(
            env,
            """
            import json, sys
            sys.path.insert(0, sys.argv[3])
            from region_year import year_of_statuses
            from overstap.bootstrap import HubContext
            from overstap.ports import Route
            from overstap.services.delivery import save_municipality_routes
            from overstap.services.reconcile import reconcile
            from pathlib import Path
            from sqlalchemy import update
            from overstap.store.tables import dossier
            ctx = HubContext.open()
            with ctx.engine.begin() as conn:  # the dossiers went out (the delivery DAG's part)
                conn.execute(update(dossier).values(state="afgeleverd"))
            settings = json.loads(sys.argv[1])
            save_municipality_routes(ctx, [Route(g, "sftp", {**settings, "folder": "in/{recipient}"}) for g in json.loads(sys.argv[2])])
            reconcile(ctx, year_of_statuses(Path(sys.argv[4]), "dag"), channel="sftp")
            """,
            json.dumps(route_settings(sshd, "00000001000000000001")),
            json.dumps(gemeenten),
            str(TESTS),
            str(region_dir),
        )
        assert setup.returncode == 0, setup.stderr[-3000:]
        before = _dag_test(env, calendar.registration_deadline - timedelta(days=1))
        # Nothing to deliver before the deadline: the mapped task expands to nothing.
        assert [t[2] for t in before["tis"] if t[0] == "deliver"] == ["skipped"]
        # A dry run on the deadline sees what it would raise and changes nothing.
        head = _hub_state(env)
        _dag_test(env, calendar.registration_deadline, dry_run=True)
        assert _hub_state(env) == head
        import sqlite3

        with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
            (plan,) = db.execute(
                "SELECT value FROM xcom WHERE task_id = 'raise_signals' ORDER BY timestamp DESC"
            ).fetchone()
        plan = json.loads(plan) if isinstance(plan, str) else json.loads(plan.decode())
        plan = json.loads(plan) if isinstance(plan, str) else plan
        assert plan["dry_run"] is True and plan["raised"] > 0, plan
        _dag_test(env, calendar.registration_deadline)
        assert _hub_state(env) != head  # the real run on the same day does change it
        _dag_test(env, calendar.zomerlek_date)
    finally:
        sshd.stop()

    expected: dict[str, int] = {}
    for record in iter_students(region_dir):
        for e in record.scenario.expected_signals:
            if e.date <= calendar.zomerlek_date:
                expected[str(e.gemeente)] = expected.get(str(e.gemeente), 0) + 1
    assert expected
    for g in gemeenten:
        names = sorted(p.name for p in (sshd.root / "in" / g).iterdir())
        files = [n for n in names if n.endswith(".xml.p7m")]
        assert len([n for n in names if n.endswith(".csv.p7m")]) == len(files)
        assert bool(files) == (g in expected), (g, names)
        assert all(n.startswith(f"SIG-{g}-") or n.startswith("manifest-") for n in names)
    states = run_python(
        env,
        """
        import json
        from sqlalchemy import select
        from overstap.bootstrap import HubContext
        from overstap.store.tables import signal
        with HubContext.open().engine.connect() as conn:
            rows = conn.execute(select(signal.c.gemeente, signal.c.state, signal.c.signal_date)).all()
        print(json.dumps([[g, s, d.isoformat()] for g, s, d in rows]))
        """,
    )
    assert states.returncode == 0, states.stderr[-2000:]
    rows = json.loads(states.stdout.strip().splitlines()[-1])
    assert {s for _, s, _ in rows} == {"delivered"}
    # XComs carry counts and ids only: no personal number of the region in any of them.
    import sqlite3

    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        xcoms = " ".join(str(v) for (v,) in db.execute("SELECT value FROM xcom"))
    assert "raised" in xcoms  # the tasks' counts are there
    numbers = {r.student.identifier.value for r in iter_students(region_dir)}
    assert not [n for n in numbers if n in xcoms]
    got: dict[str, int] = {}
    for g, _, _ in rows:
        got[g] = got.get(g, 0) + 1
    assert got == expected


def test_the_audit_checkpoint_dag_signs_the_head(tmp_path: Path) -> None:
    env = _env(tmp_path)
    migrate(env)
    overstap = str(BIN / "overstap")
    for args in (("db", "upgrade"), ("certs", "init")):
        done = subprocess.run([overstap, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    appended = run_python(
        env,
        """
        from overstap.audit.chain import AuditEvent
        from overstap.bootstrap import HubContext
        from overstap.store.audit_log import AuditLog
        with HubContext.open().engine.begin() as conn:
            AuditLog(conn).append_many(AuditEvent("test", "x.done", "x", str(i)) for i in range(3))
        """,
    )
    assert appended.returncode == 0, appended.stderr[-2000:]
    _dag_test(env, date(2026, 12, 2), "overstap_audit_checkpoint")
    verified = subprocess.run([overstap, "audit", "verify"], env=env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
    assert verified.returncode == 0 and "1 signed checkpoints hold" in verified.stdout, (
        verified.stdout + verified.stderr
    )
