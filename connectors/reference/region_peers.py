"""A synthetic region's parties as local reference peers, for the year through Airflow
(`overstap.runtime.year`, `make demo`) and its test.

- an OpenSSH sshd serves every SFTP party: the institutions' dossier drops and status outboxes
  and the municipalities' drops (without an sshd binary, folders instead);
- a reference mbo SOAP service per SOAP institution (`mbo_soap`);
- the hub's MeldStatus service (`connectors.status_server`), for the statuses sent by SOAP;
- each institution's status sender (`mbo_status`).

`Peers.registry` writes the region's registry for these peers (routes through Airflow
Connections); `Peers.send_statuses` makes the institutions report a period's news.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from overstap.bootstrap import HubContext
from overstap.domain.registration import StatusReport
from overstap.pki import passphrase_from
from overstap.region.model import REGION_FILE, Region
from overstap.services.pki import hub_party

_STATUS_BATCH = 500  # reports per MeldStatus request or status file


@dataclass
class Peers:
    """The region's parties as local servers; `stop` ends them all."""

    region: Region
    pki_dir: Path
    hub_oin: str
    drops: Path  # the SFTP root (or the folder root without sshd)
    sshd: Any | None = None
    mbo_servers: dict[str, Any] = field(default_factory=dict)
    intake: Any | None = None
    senders: dict[str, Any] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        return "sftp" if self.sshd is not None else "folder"

    def stop(self) -> None:
        for sender in self.senders.values():
            sender.close()
        for server in self.mbo_servers.values():
            server.stop()
        if self.intake is not None:
            self.intake.stop()
        if self.sshd is not None:
            self.sshd.stop()

    def registry(self, region_dir: Path) -> dict[str, Any]:
        """The region's registry for these peers: region.yaml plus sources, routes, connections."""
        data: dict[str, Any] = yaml.safe_load((region_dir / REGION_FILE).read_text("utf-8"))
        sis = str((region_dir / "sis").resolve() / "{location}")
        for school in data["vo_schools"]:
            school["sis_source"] = {"connector": "file", "settings": {"folder": sis}}
        connections: dict[str, Any] = {}
        if self.sshd is not None:
            connections["overstap_sftp_peers"] = {
                "conn_type": "sftp",
                "host": "127.0.0.1",
                "port": self.sshd.port,
                "login": self.sshd.user,
                "extra": {
                    "key_path": str(self.sshd.client_key_path),
                    "host_key": self.sshd.host_key_line,
                    "timeout": "30",
                },
            }
        for inst in data["mbo_institutions"]:
            brin = inst["brin"]
            if inst["transport"] == "soap":
                conn_id = f"overstap_mbo_{brin}"
                connections[conn_id] = {
                    "conn_type": "https",
                    "extra": {"endpoint": self.mbo_servers[brin].url},
                }
                inst["route"] = {"connection": conn_id, "settings": {"oin": inst["oin"]}}
            elif self.sshd is not None:
                inst["route"] = {
                    "connection": "overstap_sftp_peers",
                    "settings": {
                        "oin": inst["oin"],
                        "folder": f"mbo/{brin}/in",
                        "outbox_folder": f"mbo/{brin}/out",
                        "archive_folder": f"mbo/{brin}/out/archive",
                    },
                }
            else:
                inst["route"] = {
                    "transport": "folder",
                    "settings": {
                        "oin": inst["oin"],
                        "folder": str(self.drops / "mbo" / brin / "in"),
                    },
                }
        for m in data["municipalities"]:
            if self.sshd is not None:
                route = {
                    "transport": "sftp",
                    "connection": "overstap_sftp_peers",
                    "settings": {"oin": m["oin"], "folder": f"gm/{m['code']}/in"},
                }
            else:
                folder = str(self.drops / "gm" / m["code"] / "in")
                route = {"transport": "folder", "settings": {"oin": m["oin"], "folder": folder}}
            m["route"] = route
        data["connections"] = connections
        data["certificates"] = {"hub_oin": self.hub_oin, "pki_dir": str(self.pki_dir)}
        return data

    def send_statuses(self, reports: list[StatusReport], prefix: str) -> Counter[str]:
        """Each institution reports its news: by SOAP to the hub, or as files in its outbox.
        Returns reports sent per channel."""
        sent: Counter[str] = Counter()
        by_mbo: dict[str, list[StatusReport]] = defaultdict(list)
        for r in reports:
            by_mbo[str(r.mbo)].append(r)
        transports = {str(i.brin): i.transport for i in self.region.mbo_institutions}
        for brin, items in sorted(by_mbo.items()):
            sender = self.senders[brin]
            for n in range(0, len(items), _STATUS_BATCH):
                batch = items[n : n + _STATUS_BATCH]
                if transports[brin] == "sftp" and self.sshd is not None:
                    outbox = self.drops / "mbo" / brin / "out"
                    name = f"status-{prefix}-{n // _STATUS_BATCH}.xml"
                    part = outbox / f".{name}.part"  # written whole, then renamed: never half
                    part.write_bytes(sender.document(batch))
                    part.rename(outbox / name)
                    sent["sftp"] += len(batch)
                else:
                    assert self.intake is not None
                    sender.post(self.intake.url, self.hub_oin, batch)
                    sent["soap"] += len(batch)
        return sent


@contextmanager
def running_peers(
    ctx: HubContext, region: Region, workdir: Path, *, sshd_bin: str | None
) -> Iterator[Peers]:
    from connectors.reference.mbo_soap import MboSoapServer
    from connectors.reference.mbo_status import MboStatusSender
    from connectors.reference.sftp_server import start_sshd
    from connectors.status_server import StatusIntakeServer
    from overstap.domain.identifiers import Oin

    pki_dir = ctx.settings.pki_dir
    passphrase = passphrase_from(pki_dir, os.environ)
    hub_oin = hub_party().oin.value
    drops = workdir / "drops"
    peers = Peers(region, pki_dir, hub_oin, drops)
    try:
        if sshd_bin is not None:
            peers.sshd = start_sshd(sshd_bin, workdir / "sshd", drops)
        for inst in region.mbo_institutions:
            for sub in ("in", "out/archive"):
                (drops / "mbo" / str(inst.brin) / sub).mkdir(parents=True, exist_ok=True)
            if inst.transport == "soap":
                server = MboSoapServer(
                    pki_dir, f"mbo-{inst.brin}", passphrase, hub_oin=Oin.parse(hub_oin)
                )
                peers.mbo_servers[str(inst.brin)] = server.start()
            peers.senders[str(inst.brin)] = MboStatusSender(pki_dir, str(inst.brin), passphrase)
        for m in region.municipalities:
            (drops / "gm" / str(m.code) / "in").mkdir(parents=True, exist_ok=True)
        peers.intake = StatusIntakeServer(ctx, pki_dir=pki_dir, passphrase=passphrase).start()
        yield peers
    finally:
        peers.stop()
