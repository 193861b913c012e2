"""The whole school year through Airflow (issue 9): a synthetic region runs from the October
pull to the end of the first mbo year with `dag.test()` on every milestone, against the
reference peers: the schools' SIS exports, an mbo SOAP service per SOAP institution, OpenSSH for
the SFTP institutions (dossiers in, status files out) and the municipalities' drops, the hub's
MeldStatus service for the statuses sent by SOAP.

At the end every leaving-year student stands where the region's scenarios say, every signal
went to the municipality the student lived in on its date (and only there), every DAG run
succeeded, and the audit chain and its signed checkpoints verify. (Dry runs:
tests/dags/test_signals_dag.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

from airflow_run import airflow_env, run_python


def test_a_school_year_through_airflow_ends_as_the_region_says(
    tmp_path: Path, sshd_bin: str
) -> None:
    env = airflow_env(tmp_path)
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    done = run_python(
        env,
        """
        import json, os, sys
        from pathlib import Path
        from overstap.runtime.year import airflow_environment, migrate_airflow, run_year
        work = Path(sys.argv[1])
        migrate_airflow(airflow_environment(Path(os.environ["AIRFLOW_HOME"])))
        from overstap.bootstrap import HubContext
        from overstap.region.generate import generate_region
        from overstap.services.pki import issue_dev_pki
        from overstap.store import migrate
        generate_region(work / "region", students=300, seed=2026)
        ctx = HubContext.open(require_schema=False)
        issue_dev_pki(ctx.settings, work / "region")
        migrate.upgrade(ctx.engine)
        report = run_year(ctx, work / "region", work, sshd_bin=sys.argv[2])
        print(json.dumps({
            "failed": [[r.dag_id, str(r.day), r.state, r.tasks] for r in report.failed_runs],
            "runs": len(report.runs),
            "differences": report.differences,
            "expected_signals": report.expected.signals_per_municipality(),
            "observed_signals": report.observed.signals_per_municipality(),
            "standings": report.observed.standing_counts(),
            "expected_standings": report.expected.standing_counts(),
            "deliveries": [[*k, n] for k, n in report.deliveries.items()],
            "sent": report.statuses_sent,
            "audit_problem": report.audit_problem,
            "checkpoints": report.checkpoints,
            "records": report.audit_records,
        }))
        """,
        str(tmp_path),
        sshd_bin,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] == []
    assert result["runs"] > 60  # every DAG on every milestone
    assert result["differences"] == [], result["differences"][:10]
    assert result["standings"] == result["expected_standings"]
    assert sum(result["standings"].values()) > 250
    assert result["observed_signals"] == result["expected_signals"] != {}
    assert result["audit_problem"] is None and result["checkpoints"] > 10
    deliveries = {(k, ch, st): n for k, ch, st, n in result["deliveries"]}
    assert {st for (_, _, st) in deliveries} == {"delivered"}, deliveries
    assert deliveries["dossier", "soap", "delivered"] > 0
    assert deliveries["dossier", "sftp", "delivered"] > 0
    assert result["sent"]["soap"] > 0 and result["sent"]["sftp"] > 0
    # On OpenSSH: each institution's dossiers in its drop, each municipality's files in its own.
    drops = tmp_path / "drops"
    sftp_dossiers = list((drops / "mbo").glob("*/in/*.p7m"))
    assert len(sftp_dossiers) == deliveries["dossier", "sftp", "delivered"]
    files = list((drops / "gm").glob("*/in/SIG-*.xml.p7m"))
    assert len(files) == deliveries["signals", "sftp", "delivered"]
    assert all(f.name.startswith(f"SIG-{f.parent.parent.name}-") for f in files)
    with_files = {f.parent.parent.name for f in files}
    assert with_files == set(result["expected_signals"])
    # Status files were collected and archived, none rejected.
    archived = list((drops / "mbo").glob("*/out/archive/status-*"))
    assert archived and not [p for p in archived if p.name.endswith(".rejected")]
    assert not list((drops / "mbo").glob("*/out/status-*"))
