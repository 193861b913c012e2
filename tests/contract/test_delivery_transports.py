"""The contract every `DeliveryTransport` passes - the in-memory fake, a folder, SFTP to real
OpenSSH, and Edukoppeling SOAP over mutual TLS to the reference mbo endpoint: a batch arrives
once with its exact bytes, a resend of the same MessageIDs doubles nothing, and file-based
receivers get a manifest signed by the hub that lists exactly the files."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeDeliveryTransport, FakeReceiver
from lxml import etree

from overstap.crypto.trust import TrustStore
from overstap.domain.identifiers import Brin, Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.ports import DeliveryTransport, Outgoing, Route
from overstap.services.pki import DEV_HUB_OIN
from overstap.xml.dsig import Verifier
from overstap.xml.safe import parse_untrusted

PASS = b"delivery-contract-passphrase"
KINDS = ["fake", "folder", "sftp", "soap"]
MBO_OIN = "00000007252211000000"
TESTS = Path(__file__).resolve().parents[1]


@dataclass
class Receiver:
    """What arrived, by MessageID, and the manifests (None for receivers without them).

    `payload(i)` makes the i-th test message's bytes the receiver accepts (a SOAP receiver
    takes dossiers only); `same(bytes)` puts sent and stored bytes in one form (a SOAP
    receiver re-serialises the Body it stored: compared canonicalised).
    """

    stored: Callable[[], dict[str, bytes]]
    manifests: Callable[[], list[bytes]] | None
    payload: Callable[[int], bytes] = lambda i: _random_payload(i)
    same: Callable[[bytes], bytes] = lambda data: data


Kit = tuple[DeliveryTransport, Route, Receiver]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_dev_pki(
        tmp_path_factory.mktemp("pki"),
        [PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub")],
        PASS,
    )


@pytest.fixture
def env_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERSTAP_KEY_PASSPHRASE", PASS.decode())


def _by_uuid(folder: Path) -> dict[str, bytes]:
    return {
        f"urn:uuid:{p.stem}": p.read_bytes()
        for p in folder.iterdir()
        if p.suffix in (".p7m", ".xml") and not p.name.startswith("manifest-")
    }


@pytest.fixture
def fake_kit(tmp_path: Path) -> Kit:
    receiver = FakeReceiver(tmp_path / "receiver")
    stored = lambda: {k.replace("urn_uuid_", "urn:uuid:"): v for k, v in receiver.stored().items()}  # noqa: E731
    return FakeDeliveryTransport(receiver), Route("25MB", "fake", {}), Receiver(stored, None)


@pytest.fixture
def folder_kit(tmp_path: Path, pki: PkiLayout, env_passphrase: None) -> Kit:
    from connectors.file_delivery import FolderDeliveryTransport

    drop = tmp_path / "drop" / "25MB"
    drop.mkdir(parents=True)
    route = Route(
        "25MB",
        "folder",
        {
            "folder": str(tmp_path / "drop" / "{recipient}"),
            "oin": MBO_OIN,
            "pki_dir": str(pki.root),
        },
    )
    manifests = lambda: [p.read_bytes() for p in sorted(drop.glob("manifest-*.xml"))]  # noqa: E731
    return FolderDeliveryTransport(), route, Receiver(lambda: _by_uuid(drop), manifests)


@pytest.fixture(scope="module")
def sshd_server(sshd_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sshd import start_sshd

    work = tmp_path_factory.mktemp("sshd")
    server = start_sshd(sshd_bin, work / "etc", work / "root")
    yield server
    server.stop()


@pytest.fixture
def sftp_kit(sshd_server: Any, pki: PkiLayout, env_passphrase: None) -> Kit:
    from connectors.file_delivery import SftpDeliveryTransport

    drop = sshd_server.root / f"in-{uuid.uuid4().hex[:8]}"
    drop.mkdir()
    route = Route(
        "25MB",
        "sftp",
        {
            "host": "127.0.0.1",
            "port": str(sshd_server.port),
            "username": sshd_server.user,
            "key_path": str(sshd_server.client_key_path),
            "host_key": sshd_server.host_key_line,
            "timeout": "5",
            "folder": drop.name,
            "oin": MBO_OIN,
            "pki_dir": str(pki.root),
        },
    )
    manifests = lambda: [p.read_bytes() for p in sorted(drop.glob("manifest-*.xml"))]  # noqa: E731
    return SftpDeliveryTransport(), route, Receiver(lambda: _by_uuid(drop), manifests)


MBO_PARTY_OIN = Oin.for_brin(Brin("34CD"))


@pytest.fixture(scope="module")
def soap_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_dev_pki(
        tmp_path_factory.mktemp("soap-pki"),
        [
            PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub"),
            PartySpec(slug="mbo", name="Regio College Oost", oin=MBO_PARTY_OIN, kind="mbo"),
        ],
        PASS,
    )


@pytest.fixture(scope="module")
def soap_server(soap_pki: PkiLayout) -> Iterator[Any]:
    from connectors.reference.mbo_soap import MboSoapServer

    with MboSoapServer(soap_pki.root, "mbo", PASS, hub_oin=Oin(DEV_HUB_OIN)) as server:
        yield server


def _canonical(data: bytes) -> bytes:
    return bytes(etree.tostring(parse_untrusted(data), method="c14n", exclusive=True))


@pytest.fixture
def soap_kit(soap_server: Any, soap_pki: PkiLayout, tmp_path: Path) -> Iterator[Kit]:
    from connectors.soap_delivery import SoapDeliveryTransport

    soap_server.reset()
    secret = tmp_path / "passphrase"
    secret.write_bytes(PASS)
    route = Route(
        "34CD",
        "soap",
        {
            "endpoint": soap_server.url,
            "oin": MBO_PARTY_OIN.value,
            "pki_dir": str(soap_pki.root),
            "passphrase_file": str(secret),
            "timeout": "5",
        },
    )
    transport = SoapDeliveryTransport()
    dossier = (TESTS / "fixtures" / "xml" / "dossier.xml").read_bytes()
    yield (
        transport,
        route,
        Receiver(lambda: dict(soap_server.received), None, lambda i: dossier, _canonical),
    )
    transport.close()


@pytest.fixture(params=KINDS)
def kit(request: pytest.FixtureRequest) -> Kit:
    found: Kit = request.getfixturevalue(f"{request.param}_kit")
    return found


def _random_payload(i: int, size: int = 9000) -> bytes:
    """CMS-sized bytes that start like DER, different per message."""
    return bytes([0x30, 0x82]) + hashlib.sha256(b"%d" % i).digest() * (size // 32)


def _messages(n: int, receiver: Receiver) -> list[Outgoing]:
    out = []
    for i in range(n):
        payload = receiver.payload(i)
        out.append(
            Outgoing(
                f"urn:uuid:{uuid.uuid4()}", f"D{i}", payload, hashlib.sha256(payload).hexdigest()
            )
        )
    return out


def test_a_batch_arrives_once_with_its_exact_bytes(kit: Kit) -> None:
    transport, route, receiver = kit
    messages = _messages(7, receiver)
    results = transport.send(route, messages)
    assert [r.message_id for r in results] == [m.message_id for m in messages]
    assert all(r.delivered for r in results), [r.detail for r in results]
    stored = {k: receiver.same(v) for k, v in receiver.stored().items()}
    assert stored == {m.message_id: receiver.same(m.payload) for m in messages}


def test_a_resend_of_the_same_message_ids_doubles_nothing(kit: Kit) -> None:
    transport, route, receiver = kit
    messages = _messages(4, receiver)
    transport.send(route, messages[:2])
    results = transport.send(route, messages)  # after a crash the hub resends everything
    assert all(r.delivered for r in results)
    stored = {k: receiver.same(v) for k, v in receiver.stored().items()}
    assert stored == {m.message_id: receiver.same(m.payload) for m in messages}


def test_the_manifest_lists_exactly_the_files_and_is_signed_by_the_hub(
    kit: Kit, pki: PkiLayout
) -> None:
    transport, route, receiver = kit
    if receiver.manifests is None:
        pytest.skip("this receiver takes messages, not files: no manifest")
    messages = _messages(3, receiver)
    transport.send(route, messages)
    [manifest] = receiver.manifests()
    root = parse_untrusted(manifest)
    Verifier(TrustStore.from_pem_file(pki.trust_bundle_path)).verify(
        root, expected_oin=Oin(DEV_HUB_OIN)
    )
    ns = "{urn:overstap:manifest:1}"
    listed = {
        e.findtext(f"{ns}naam"): (int(e.findtext(f"{ns}grootte") or 0), e.findtext(f"{ns}sha256"))
        for e in root.iter(f"{ns}bestand")
    }
    stored = receiver.stored()
    assert len(listed) == len(stored) == 3
    for name, (size, digest) in listed.items():
        ident = "urn:uuid:" + name.rsplit(".", 1)[0]
        assert size == len(stored[ident]) and digest == hashlib.sha256(stored[ident]).hexdigest()
    assert root.findtext(f"{ns}ontvanger") == MBO_OIN and etree.QName(root).localname == "manifest"
