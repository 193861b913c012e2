"""SIGKILL the sender with the real transports - SFTP to OpenSSH, SOAP over mutual TLS to the
reference mbo endpoint - right after it claimed a batch, and after the receiver stored it but
before the hub committed. After recovery every dossier is stored exactly once at the receiver,
the outbox says delivered, and no partial file is visible under a final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.domain.identifiers import Brin, Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.ports import Route
from overstap.runtime.wiring import delivery_transport
from overstap.services.delivery import deliver_due, route_for, save_routes
from overstap.services.pki import DEV_HUB_OIN
from overstap.store.audit_log import AuditLog
from overstap.store.outbox import Outbox
from overstap.store.tables import mbo_institution, outbox
from overstap.store.upsert import upsert

PASS = b"kill-test-passphrase-long"
BRIN = "34CD"
MBO_OIN = Oin.for_brin(Brin(BRIN))
DOSSIER = (Path(__file__).resolve().parents[1] / "fixtures" / "xml" / "dossier.xml").read_bytes()

SENDER = """
from datetime import timedelta
from overstap.bootstrap import HubContext
from overstap.runtime.wiring import delivery_transport
from overstap.services.delivery import deliver_due, route_for
ctx = HubContext.open()
route = route_for(ctx, "34CD")
deliver_due(ctx, route, delivery_transport(route.transport), lease=timedelta(seconds=1))
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_dev_pki(
        tmp_path_factory.mktemp("pki"),
        [
            PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub"),
            PartySpec(slug="mbo", name="Regio College Oost", oin=MBO_OIN, kind="mbo"),
        ],
        PASS,
    )


@pytest.fixture(scope="module")
def sshd_server(sshd_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sshd import start_sshd

    work = tmp_path_factory.mktemp("sshd")
    server = start_sshd(sshd_bin, work / "etc", work / "root")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def soap_server(pki: PkiLayout) -> Iterator[Any]:
    from connectors.reference.mbo_soap import MboSoapServer

    with MboSoapServer(pki.root, "mbo", PASS, hub_oin=Oin(DEV_HUB_OIN)) as server:
        yield server


def _route(
    kind: str, pki: PkiLayout, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[Route, Any]:
    if kind == "sftp":
        server = request.getfixturevalue("sshd_server")
        drop = server.root / tmp_path.name
        drop.mkdir()
        settings = {
            "host": "127.0.0.1", "port": str(server.port), "username": server.user,
            "key_path": str(server.client_key_path), "host_key": server.host_key_line,
            "timeout": "5", "folder": drop.name, "oin": MBO_OIN.value, "pki_dir": str(pki.root),
        }  # fmt: skip

        def stored() -> dict[str, bytes]:
            return {
                f"urn:uuid:{p.stem}": p.read_bytes()
                for p in drop.iterdir()
                if p.suffix == ".xml" and not p.name.startswith("manifest-")
            }

        return Route(BRIN, "sftp", settings), (stored, lambda: list(drop.glob("*.part")))
    server = request.getfixturevalue("soap_server")
    server.reset()
    settings = {
        "endpoint": server.url,
        "oin": MBO_OIN.value,
        "pki_dir": str(pki.root),
        "timeout": "5",
    }
    return Route(BRIN, "soap", settings), (lambda: dict(server.received), lambda: [])


@pytest.mark.parametrize("point", ["claimed", "sent"])
@pytest.mark.parametrize("kind", ["sftp", "soap"])
def test_sender_killed_recovers_with_each_dossier_stored_once(
    engine: Engine, db_url: str, tmp_path: Path, pki: PkiLayout, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch, kind: str, point: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("OVERSTAP_KEY_PASSPHRASE", PASS.decode())
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )
    with engine.begin() as conn:
        upsert(
            conn,
            mbo_institution,
            [{"brin": BRIN, "name": "ROC", "oin": MBO_OIN.value, "transport": kind}],
            keys=["brin"],
        )
    route, (stored, parts) = _route(kind, pki, tmp_path, request)
    save_routes(ctx, [route])
    with engine.begin() as conn:
        box = Outbox(conn, datetime.now(UTC))
        ids = [
            box.enqueue(
                kind="dossier", object_ref=f"D{i}", recipient=BRIN, transport=kind, payload=DOSSIER
            )
            for i in range(4)
        ]
    marker = tmp_path / "reached"
    env = {
        **os.environ,
        "OVERSTAP_HOME": str(tmp_path),
        "OVERSTAP_DATABASE_URL": db_url,
        "OVERSTAP_PSEUDONYM_KEY": "00" * 32,
        "OVERSTAP_KEY_PASSPHRASE": PASS.decode(),
        "OVERSTAP_FAILPOINT": point,
        "OVERSTAP_FAILPOINT_FILE": str(marker),
    }
    sender = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SENDER)], env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert sender.poll() is None, (sender.stderr.read() if sender.stderr else b"")[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=30)
    assert len(stored()) == (0 if point == "claimed" else 4)

    time.sleep(1.1)  # the dead sender's lease runs out
    report = deliver_due(ctx, route_for(ctx, BRIN), delivery_transport(kind))
    assert report.delivered == 4, report.details
    assert sorted(stored()) == sorted(ids)  # each exactly once (keys are MessageIDs)
    assert parts() == []
    with engine.connect() as conn:
        assert {r.state for r in conn.execute(select(outbox))} == {"delivered"}
        assert AuditLog(conn).verify().problem is None
