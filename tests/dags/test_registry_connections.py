"""`sync_connections` writes the registry's Airflow Connections into Airflow's metadata database
(password from the variable the registry names); a second sync changes nothing, a changed field
is an update, and a missing password variable refuses the whole sync before anything is
written. `resolve_route` fills a route from a Connection that a secrets backend holds (here the
environment backend, `AIRFLOW_CONN_*`); from the metadata database it resolves inside a task,
which the full-cycle test exercises (tests/dags/test_full_cycle.py)."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_run import airflow_env, migrate, run_python


def test_sync_then_resolve_through_airflow(tmp_path: Path) -> None:
    env = {
        **airflow_env(tmp_path),
        "SFTP_PASSWORD": "s3cret-from-env",
        "AIRFLOW_CONN_OVERSTAP_SFTP_ENV": json.dumps({
            "conn_type": "sftp", "host": "drop.example", "port": 22, "login": "hub",
            "extra": {"host_key": "ssh-ed25519 BBBB", "key_path": "/run/secrets/k",
                      "folder": "theirs", "oin": "00000001999999999999"},
        }),
    }  # fmt: skip
    migrate(env)
    done = run_python(
        env,
        """
        import json, os
        from overstap.domain.errors import ConfigurationError
        from overstap.ports import Route
        from overstap.registry import ConnectionSpec
        from overstap.runtime.connections import resolve_route, sync_connections
        sftp = ConnectionSpec("overstap_sftp", "sftp", host="sftp.example", port=2222,
                              login="hub", password_env="SFTP_PASSWORD",
                              extra={"host_key": "ssh-ed25519 AAAA", "folder": "in"})
        soap = ConnectionSpec("overstap_mbo_25MB", "https", extra={"endpoint": "https://mbo/soap"})
        out = {}
        first = sync_connections([sftp, soap], os.environ)
        again = sync_connections([sftp, soap], os.environ)
        from dataclasses import replace
        changed = sync_connections([replace(sftp, port=2223), soap], os.environ)
        try:
            sync_connections([replace(soap, extra={"endpoint": "https://elsewhere"}),
                              replace(sftp, password_env="NOT_SET")], os.environ)
            out["refused"] = False
        except ConfigurationError as exc:
            out["refused"] = "NOT_SET" in str(exc)
        from airflow.models.connection import Connection
        from airflow.utils.session import create_session
        from sqlalchemy import select
        with create_session() as session:  # an administrator adds a secret in Airflow itself
            conn = session.scalar(select(Connection).where(Connection.conn_id == "overstap_sftp"))
            conn.set_extra(json.dumps({**conn.extra_dejson, "private_key": "KEPT-IN-AIRFLOW"}))
        kept_secret = sync_connections([replace(sftp, port=2223, password_env=None), soap], os.environ)
        stored = Connection.get_connection_from_secrets("overstap_sftp")
        kept = Connection.get_connection_from_secrets("overstap_mbo_25MB")
        route = resolve_route(Route("25MB", "sftp", {"conn_id": "overstap_sftp_env", "folder": "in", "oin": "1"}))
        pinned = resolve_route(Route("25MB", "sftp", {"conn_id": "overstap_sftp_env", "folder": "mine"}))
        out.update({
            "first": [first.created, first.updated, first.unchanged],
            "again": [again.created, again.updated, again.unchanged],
            "changed": [changed.created, changed.updated, changed.unchanged],
            "kept_secret": [kept_secret.updated, kept_secret.unchanged],
            "stored": [stored.host, stored.port, stored.login, stored.password, stored.extra_dejson],
            "soap": kept.extra_dejson,
            "route": dict(route.settings),
            "pinned": dict(pinned.settings),
        })
        try:
            resolve_route(Route("27MB", "soap", {"conn_id": "overstap_nowhere"}))
        except ConfigurationError as exc:
            out["missing"] = str(exc)
        print(json.dumps(out))
        """,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["first"] == [["overstap_sftp", "overstap_mbo_25MB"], [], []]
    assert out["again"] == [[], [], ["overstap_sftp", "overstap_mbo_25MB"]]
    assert out["changed"] == [[], ["overstap_sftp"], ["overstap_mbo_25MB"]]
    assert out["refused"] is True
    # A sync without password_env leaves the password, and keeps extras the file does not name
    # (a secret an administrator keeps in Airflow): nothing to update.
    assert out["kept_secret"] == [[], ["overstap_sftp", "overstap_mbo_25MB"]]
    assert out["stored"] == [
        "sftp.example", 2223, "hub", "s3cret-from-env",
        {"folder": "in", "host_key": "ssh-ed25519 AAAA", "private_key": "KEPT-IN-AIRFLOW"},
    ]  # fmt: skip
    # The route's own settings win over the Connection's; its OIN never comes from Airflow.
    assert out["route"] == {
        "folder": "in", "oin": "1", "host": "drop.example", "port": "22", "username": "hub",
        "host_key": "ssh-ed25519 BBBB", "key_path": "/run/secrets/k",
    }  # fmt: skip
    assert out["pinned"]["folder"] == "mine" and "oin" not in out["pinned"]
    # The refused sync wrote nothing: the endpoint is still the first one.
    assert out["soap"] == {"endpoint": "https://mbo/soap"}
    assert "overstap_nowhere" in out["missing"] and "not found" in out["missing"]
