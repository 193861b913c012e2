"""Delivery routes that name an Airflow Connection get host, login, password and extras from it
at run time (here from an `AIRFLOW_CONN_*` variable, as a secrets backend would provide it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CODE = """
import json, sys
from overstap.ports import Route
from overstap.runtime.connections import resolve_route
from overstap.domain.errors import ConfigurationError
route = resolve_route(Route("25MB", "sftp", {"conn_id": "overstap_mbo_25MB", "timeout": "9"}))
print(json.dumps(dict(route.settings)))
try:
    resolve_route(Route("26MB", "sftp", {"conn_id": "overstap_missing"}))
except ConfigurationError as exc:
    print("refused:", exc)
"""


def test_connection_fields_and_extras_fill_the_route(tmp_path: Path) -> None:
    conn = {
        "conn_type": "sftp",
        "host": "sftp.roc.example",
        "port": 2222,
        "login": "hub",
        "extra": {
            "folder": "in",
            "host_key": "ssh-ed25519 AAAAC3Nz",
            "oin": "00000007252211000000",
        },
    }
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_OVERSTAP_MBO_25MB": json.dumps(conn),
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CODE)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    settings = json.loads(lines[-2])
    assert settings == {
        "timeout": "9",
        "host": "sftp.roc.example",
        "port": "2222",
        "username": "hub",
        "folder": "in",
        "host_key": "ssh-ed25519 AAAAC3Nz",
    }  # no oin: an OIN in a Connection is ignored, the route's own (registry-checked) counts
    assert lines[-1].startswith("refused:") and "overstap_missing" in lines[-1]
