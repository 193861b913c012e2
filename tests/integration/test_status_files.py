"""Status intake by SFTP against a real OpenSSH server.

An mbo institution from a dev PKI signs status files with its own key (one encrypted to the
hub) and leaves them in its outbox folder; the hub polls, takes them in, and archives them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_setup import MBO, hub_with_dossiers
from lxml import etree  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Engine, func, select, update
from sshd import SshdServer, start_sshd

from connectors.sftp_inbox import SftpInbox
from overstap.bootstrap import HubContext
from overstap.crypto.cms import encrypt
from overstap.domain.errors import ConfigurationError, RetryableDeliveryError
from overstap.domain.identifiers import Brin, Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.pki.load import load_certificate
from overstap.ports import Route
from overstap.services.pki import DEV_HUB_OIN
from overstap.services.status_files import HubKeys, take_in
from overstap.store.audit_log import AuditLog
from overstap.store.tables import audit_event, dossier, registration, status_message
from overstap.xml.dsig import Signer, canonical_bytes

PASS = b"test-passphrase-long-enough"
HUB = Oin.parse(DEV_HUB_OIN)
MBO_OIN = Oin.for_brin(MBO)
STRANGER = Oin.for_brin(Brin("56EF"))
ST = "urn:overstap:status:1"
ADULT = ("LL-1002", "123456009")  # students with a BSN of their own in hub_setup
SECRET = ("LL-1004", "987654305")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_dev_pki(
        tmp_path_factory.mktemp("pki"),
        [
            PartySpec(slug="hub", name="Overstap Hub", oin=HUB, kind="hub"),
            PartySpec(slug="mbo", name="Regio College Oost", oin=MBO_OIN, kind="mbo"),
            PartySpec(slug="stranger", name="Het Andere College", oin=STRANGER, kind="mbo"),
        ],
        PASS,
    )


@pytest.fixture(scope="module")
def signers(pki: PkiLayout) -> dict[str, Signer]:
    return {
        slug: Signer.from_files(
            pki.key_path(slug, "sign"), pki.cert_path(slug, "sign"), PASS, [pki.issuing_cert_path]
        )
        for slug in ("mbo", "stranger")
    }


@pytest.fixture(scope="module")
def keys(pki: PkiLayout) -> HubKeys:
    return HubKeys.load(pki.root, PASS)


@pytest.fixture
def sshd(sshd_bin: str, tmp_path: Path) -> Iterator[SshdServer]:
    server = start_sshd(sshd_bin, tmp_path / "sshd", tmp_path / "sftp-root")
    (server.root / "out").mkdir()
    yield server
    server.stop()


@pytest.fixture
def hub(engine: Engine, tmp_path: Path) -> HubContext:
    ctx = hub_with_dossiers(engine, tmp_path, "sftp")
    with engine.begin() as conn:
        conn.execute(update(dossier).values(state="afgeleverd"))  # reports need sent dossiers
    return ctx


def _route(server: SshdServer, **extra: str) -> Route:
    return Route(
        str(MBO),
        "sftp",
        {
            "host": "127.0.0.1",
            "port": str(server.port),
            "username": server.user,
            "key_path": str(server.client_key_path),
            "host_key": server.host_key_line,
            "timeout": "5",
            "oin": MBO_OIN.value,
            **extra,
        },
    )


def _melding(berichtid: str, student: tuple[str, str], status: str) -> str:
    leerlingid, bsn = student
    return f"""<statusmelding><berichtid>{berichtid}</berichtid>
<tijdstip>2026-03-10T09:00:00Z</tijdstip><mboinstelling><brincode>{MBO}</brincode>
</mboinstelling><voschool><brincode>12AB</brincode></voschool><bsn>{bsn}</bsn>
<leerlingid>{leerlingid}</leerlingid><status>{status}</status>
<statusdatum>2026-03-09</statusdatum></statusmelding>"""


def _signed(signer: Signer, *meldingen: str) -> bytes:
    root = etree.fromstring(
        f'<statusmeldingen xmlns="{ST}">{"".join(meldingen)}</statusmeldingen>'.encode()
    )
    return canonical_bytes(signer.sign(root))


def _registrations(ctx: HubContext) -> dict[str, str]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(registration.c.dossier_id, registration.c.status))
        return {row.dossier_id: row.status for row in rows}


def _ledger(ctx: HubContext) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(status_message)).scalar_one())


def test_signed_and_encrypted_files_are_taken_in_once_and_archived(
    sshd: SshdServer, hub: HubContext, pki: PkiLayout, signers: dict[str, Signer], keys: HubKeys
) -> None:
    out = sshd.root / "out"
    plain = _signed(signers["mbo"], _melding("MSG-1", ADULT, "ingeschreven"))
    (out / "a.xml").write_bytes(plain)
    hub_enc = load_certificate(pki.cert_path("hub", "enc"))
    (out / "b.p7m").write_bytes(
        encrypt(_signed(signers["mbo"], _melding("MSG-2", SECRET, "ontvangen")), [hub_enc])
    )
    (out / "c.xml.part").write_bytes(b"half a file")  # still being written
    (out / ".hidden.xml").write_bytes(b"not ours")

    report = take_in(hub, _route(sshd), SftpInbox(), keys=keys)

    assert (report.files, report.processed, report.duplicates, report.rejected) == (2, 2, 0, {})
    assert report.outcomes["applied"] == 2
    assert _registrations(hub) == {
        "DOS-2025-000002": "ingeschreven",
        "DOS-2025-000004": "ontvangen",
    }
    assert sorted(p.name for p in out.iterdir()) == [".hidden.xml", "archive", "c.xml.part"]
    assert sorted(p.name for p in (out / "archive").iterdir()) == ["a.xml", "b.p7m"]

    # The same file again (a resend): recognised by its digest, archived under a new name.
    (out / "a.xml").write_bytes(plain)
    again = take_in(hub, _route(sshd), SftpInbox(), keys=keys)
    assert (again.files, again.processed, again.duplicates) == (1, 0, 1)
    assert _ledger(hub) == 2
    assert sorted(p.name for p in (out / "archive").iterdir()) == ["a.xml", "a.xml.1", "b.p7m"]

    # The same reports in other bytes (now encrypted): a new file, but reconcile knows the
    # berichtid, so it changes nothing either.
    (out / "a.p7m").write_bytes(encrypt(plain, [hub_enc]))
    third = take_in(hub, _route(sshd), SftpInbox(), keys=keys)
    assert (third.processed, dict(third.outcomes)) == (1, {"duplicate": 1})
    assert _ledger(hub) == 2
    assert _registrations(hub) == {
        "DOS-2025-000002": "ingeschreven",
        "DOS-2025-000004": "ontvangen",
    }

    with hub.engine.connect() as conn:
        assert AuditLog(conn).verify().problem is None
        details = [
            r.detail
            for r in conn.execute(
                select(audit_event.c.detail).where(audit_event.c.object_kind == "status_file")
            )
        ]
    assert len(details) == 3
    for text in details:
        assert ADULT[1] not in text and SECRET[1] not in text
        assert json.loads(text)["reports"] == 1
        assert "LL-" not in text


def test_tampered_and_foreign_files_are_rejected_and_the_others_go_on(
    sshd: SshdServer, hub: HubContext, signers: dict[str, Signer], keys: HubKeys
) -> None:
    out = sshd.root / "out"
    tampered = _signed(signers["mbo"], _melding("MSG-1", ADULT, "ingeschreven"))
    (out / "1-tampered.xml").write_bytes(tampered.replace(b"ingeschreven", b"afgewezen"))
    (out / "2-foreign.xml").write_bytes(
        _signed(signers["stranger"], _melding("MSG-2", ADULT, "ingeschreven"))
    )
    (out / "3-not-cms.p7m").write_bytes(b"\x30\x03\x02\x01\x00")
    (out / "4-good.xml").write_bytes(
        _signed(signers["mbo"], _melding("MSG-3", SECRET, "ontvangen"))
    )

    no_date = _melding("MSG-4", ADULT, "ontvangen").replace(
        "<statusdatum>2026-03-09</statusdatum>", ""
    )
    (out / "5-invalid.xml").write_bytes(_signed(signers["mbo"], no_date))

    report = take_in(hub, _route(sshd), SftpInbox(), keys=keys)

    assert report.processed == 1
    assert set(report.rejected) == {
        "1-tampered.xml",
        "2-foreign.xml",
        "3-not-cms.p7m",
        "5-invalid.xml",
    }
    assert report.rejected["1-tampered.xml"] == "SIG-INVALID"
    assert report.rejected["5-invalid.xml"].startswith("XSD:")
    assert all(report.rejected.values())
    assert _registrations(hub) == {"DOS-2025-000004": "ontvangen"}
    assert [p.name for p in out.iterdir()] == ["archive"]
    assert sorted(p.name for p in (out / "archive").iterdir()) == [
        "1-tampered.xml.rejected",
        "2-foreign.xml.rejected",
        "3-not-cms.p7m.rejected",
        "4-good.xml",
        "5-invalid.xml.rejected",
    ]
    with hub.engine.connect() as conn:
        results = sorted(
            r.result
            for r in conn.execute(
                select(audit_event.c.result).where(audit_event.c.object_kind == "status_file")
            )
        )
    assert results == ["processed", "rejected", "rejected", "rejected", "rejected"]


def test_an_empty_outbox_needs_no_keys_and_a_custom_archive_folder_is_created(
    sshd: SshdServer, hub: HubContext, signers: dict[str, Signer], keys: HubKeys
) -> None:
    route = _route(sshd, outbox_folder="drop/{recipient}", archive_folder="done/{recipient}")
    assert take_in(hub, Route(route.recipient, "sftp", {**route.settings, "outbox_folder": "out"}),
                   SftpInbox()).files == 0  # fmt: skip
    folder = sshd.root / "drop" / str(MBO)
    folder.mkdir(parents=True)
    (folder / "x.xml").write_bytes(_signed(signers["mbo"], _melding("MSG-9", ADULT, "ontvangen")))
    assert take_in(hub, route, SftpInbox(), keys=keys).processed == 1
    assert (sshd.root / "done" / str(MBO) / "x.xml").exists()


def test_connection_problems_are_retryable_and_a_wrong_host_key_is_configuration(
    sshd: SshdServer, tmp_path: Path
) -> None:
    route = _route(sshd)
    with pytest.raises(RetryableDeliveryError):
        SftpInbox().pending(Route(route.recipient, "sftp", {**route.settings, "port": "1"}))
    key = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    other = " ".join(key.with_suffix(".pub").read_text().split()[:2])  # a real, other host key
    with pytest.raises(ConfigurationError, match="different host key"):
        SftpInbox().pending(Route(route.recipient, "sftp", {**route.settings, "host_key": other}))
    with pytest.raises(ConfigurationError):
        SftpInbox().pending(
            Route(route.recipient, "sftp", {**route.settings, "outbox_folder": "nope"})
        )


def test_a_file_larger_than_the_limit_is_refused_unread_and_the_others_go_on(
    sshd: SshdServer, hub: HubContext, signers: dict[str, Signer], keys: HubKeys
) -> None:
    out = sshd.root / "out"
    good = _signed(signers["mbo"], _melding("MSG-9", SECRET, "ontvangen"))
    (out / "1-good.xml").write_bytes(good)
    (out / "2-huge.xml").write_bytes(b"<x>" + b"a" * (len(good) + 10_000) + b"</x>")

    report = take_in(hub, _route(sshd, max_file_bytes=str(len(good) + 100)), SftpInbox(), keys=keys)

    assert report.processed == 1
    assert report.rejected == {"2-huge.xml": "STATUS-FILE-TOO-LARGE"}
    assert sorted(p.name for p in (out / "archive").iterdir()) == [
        "1-good.xml",
        "2-huge.xml.rejected",
    ]
    with hub.engine.connect() as conn:
        details = [
            d
            for (d,) in conn.execute(
                select(audit_event.c.detail).where(audit_event.c.result == "rejected")
            )
        ]
    assert len(details) == 1 and "STATUS-FILE-TOO-LARGE" in details[0] and '"bytes":' in details[0]
