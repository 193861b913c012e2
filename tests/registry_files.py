"""Registry files for tests: a small synthetic region's region.yaml with sources, routes,
connections, schedules and certificates added, the way
`connectors.reference.region_peers.Peers.registry` writes one (shared by the registry's unit,
integration and CLI tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HUB_OIN = "00000099000000000001"
SOAP_CONN = "overstap_mbo_soap"
SFTP_CONN = "overstap_sftp_peers"


def registry_data(region_dir: Path) -> dict[str, Any]:
    """region.yaml plus: a file SIS source per school, the SOAP institution through a connection,
    the SFTP institution and the first municipality through an SFTP connection, the second
    municipality on a folder, the other municipalities without a route."""
    data: dict[str, Any] = yaml.safe_load((region_dir / "region.yaml").read_text("utf-8"))
    sis = str(region_dir.resolve() / "sis" / "{location}")
    for school in data["vo_schools"]:
        school["sis_source"] = {"connector": "file", "settings": {"folder": sis}}
    soap, sftp = data["mbo_institutions"][:2]
    assert (soap["transport"], sftp["transport"]) == ("soap", "sftp")
    soap["route"] = {"connection": SOAP_CONN, "settings": {"oin": soap["oin"]}}
    sftp["route"] = {
        "connection": SFTP_CONN,
        "settings": {"oin": sftp["oin"], "folder": f"mbo/{sftp['brin']}/in"},
    }
    first, second = data["municipalities"][:2]
    first["route"] = {
        "transport": "sftp",
        "connection": SFTP_CONN,
        "settings": {"oin": first["oin"], "folder": f"gm/{first['code']}/in"},
    }
    second["route"] = {
        "transport": "folder",
        "settings": {"oin": second["oin"], "folder": "/srv/drops/gm/in"},
    }
    data["connections"] = {
        SOAP_CONN: {"conn_type": "https", "extra": {"endpoint": "https://mbo.example/soap"}},
        SFTP_CONN: {
            "conn_type": "sftp",
            "host": "sftp.example",
            "port": 2222,
            "login": "hub",
            "password_env": "OVERSTAP_SFTP_PASSWORD",
            "extra": {"key_path": "/run/secrets/sftp_key", "host_key": "ssh-ed25519 AAAAC3Nz"},
        },
    }
    data["schedules"] = {"overstap_signals": "0 6 * * *", "overstap_delivery": "*/15 6-20 * * *"}
    data["certificates"] = {"hub_oin": HUB_OIN, "pki_dir": "pki"}
    return data


def write_registry(path: Path, data: dict[str, Any]) -> tuple[Path, str]:
    """Dump `data` to `path`; returns the path and the text (to find a key's line in)."""
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path, text
