"""The status intake DAG runs with `dag.test()`: a synthetic region, one institution on SFTP
(OpenSSH) with a signed status file in its outbox folder; the file is taken in and archived.

Same setup as tests/dags/test_dags.py: a subprocess with its own AIRFLOW_HOME per run.
"""

from __future__ import annotations

import json
from pathlib import Path

from airflow_run import DAGS, migrate, region_with_pki, run_python
from airflow_run import airflow_env as _env
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

ST = "urn:overstap:status:1"


def _status_file(brin: str, key: Path, cert: Path, chain: Path, passphrase: bytes) -> bytes:
    from overstap.xml.dsig import Signer, canonical_bytes

    # An elfproef-valid BSN the region does not know: the report becomes a work item, and the
    # file is still taken in (what this test is about).
    melding = f"""<statusmelding><berichtid>DAG-MSG-1</berichtid>
<tijdstip>2026-03-10T09:00:00Z</tijdstip><mboinstelling><brincode>{brin}</brincode>
</mboinstelling><voschool><brincode>12AB</brincode></voschool><bsn>123456782</bsn>
<status>ontvangen</status><statusdatum>2026-03-09</statusdatum></statusmelding>"""
    root = etree.fromstring(f'<statusmeldingen xmlns="{ST}">{melding}</statusmeldingen>'.encode())
    signer = Signer.from_files(key, cert, passphrase, [chain])
    return canonical_bytes(signer.sign(root))


def test_status_intake_dag_takes_in_and_archives_an_institutions_files(
    tmp_path: Path, sshd_bin: str
) -> None:
    from sshd import route_settings, start_sshd

    from overstap.pki import PkiLayout
    from overstap.region.model import load_region

    env = _env(tmp_path)
    migrate(env)
    region_dir = tmp_path / "region"
    region_with_pki(env, region_dir, students=60, seed=5)
    mbo = load_region(region_dir).mbo_institutions[0]
    pki = PkiLayout(tmp_path / "home" / "pki")
    passphrase = (pki.root / ".passphrase").read_bytes().strip()
    slug = f"mbo-{mbo.brin}"
    sshd = start_sshd(sshd_bin, tmp_path / "sshd", tmp_path / "sftp-root")
    out = sshd.root / "out"
    out.mkdir()
    (out / "status-1.xml").write_bytes(
        _status_file(
            str(mbo.brin),
            pki.key_path(slug, "sign"),
            pki.cert_path(slug, "sign"),
            pki.issuing_cert_path,
            passphrase,
        )
    )
    try:
        routes = run_python(
            env,
            """
            import json, sys
            from overstap.bootstrap import HubContext
            from overstap.ports import Route
            from overstap.services.delivery import save_routes
            r = json.loads(sys.argv[1])
            save_routes(HubContext.open(), [Route(r["brin"], "sftp", r["settings"])])
            """,
            json.dumps(
                {
                    "brin": str(mbo.brin),
                    "settings": route_settings(sshd, str(mbo.oin)),
                }
            ),
        )
        assert routes.returncode == 0, routes.stderr[-2000:]
        run = run_python(
            env,
            """
            import json, sys
            from airflow.dag_processing.dagbag import DagBag
            dag = DagBag(dag_folder=sys.argv[1]).dags["overstap_status_intake"]
            dr = dag.test()
            print(json.dumps({"state": str(dr.state), "tis": [[ti.task_id, ti.map_index, str(ti.state)] for ti in dr.get_task_instances()]}))
            """,
            str(DAGS / "overstap_status_intake.py"),
        )
        assert run.returncode == 0, run.stderr[-3000:]
    finally:
        sshd.stop()
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert "success" in result["state"], (result, run.stderr[-3000:])
    assert [ti for ti in result["tis"] if ti[0] == "take_in"] == [["take_in", 0, "success"]]
    assert [p.name for p in out.iterdir()] == ["archive"]
    assert [p.name for p in (out / "archive").iterdir()] == ["status-1.xml"]
    ledger = run_python(
        env,
        """
        import json
        from sqlalchemy import select
        from overstap.bootstrap import HubContext
        from overstap.store.tables import status_message
        with HubContext.open().engine.connect() as conn:
            print(json.dumps([[r.message_id, r.channel] for r in conn.execute(select(status_message))]))
        """,
    )
    assert ledger.returncode == 0, ledger.stderr[-2000:]
    assert json.loads(ledger.stdout.strip().splitlines()[-1]) == [["DAG-MSG-1", "sftp"]]
