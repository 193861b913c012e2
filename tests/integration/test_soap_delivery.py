"""SOAP delivery (Edukoppeling 2W-be-S over mutual TLS) against the reference mbo endpoint.

Everything is real: HTTPS on loopback with client certificates from a dev PKI, signed requests
and responses, the receiver's deduplication on MessageID. Each misbehaviour of the receiver
must end in the right `SendResult`, and a resend after it must leave exactly one stored copy.
"""

from __future__ import annotations

import http.client
import ssl
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from connectors.reference.mbo_soap import ACTION, MboSoapServer
from connectors.soap_delivery import SoapDeliveryTransport
from overstap.domain.identifiers import Brin, BrinVestiging, Oin
from overstap.errors import ConfigurationError
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.ports import Outgoing, Route
from overstap.services.pki import DEV_HUB_OIN
from overstap.xml.dsig import canonical_bytes
from overstap.xml.safe import parse_untrusted
from overstap.xml.schemas import validate
from overstap.xml.wssec import SOAP_NS, WsSigner, build_envelope

PASS = b"test-passphrase-long-enough"
HUB = Oin.parse(DEV_HUB_OIN)
MBO = Oin.for_brin(BrinVestiging(Brin("34CD")))
OTHER = Oin.for_brin(BrinVestiging(Brin("56EF")))
SCHOOL = Oin.for_brin(BrinVestiging(Brin("12AB")))
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xml"
DOSSIER = (FIXTURES / "dossier.xml").read_bytes()


def _parties(*specs: tuple[str, str, Oin, str]) -> list[PartySpec]:
    return [PartySpec(slug=s, name=n, oin=o, kind=k) for s, n, o, k in specs]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_dev_pki(
        tmp_path_factory.mktemp("pki"),
        _parties(
            ("hub", "Overstap Hub", HUB, "hub"),
            ("mbo", "Regio College Oost", MBO, "mbo"),
            ("other", "Het Andere College", OTHER, "mbo"),
            ("vo", "De Horizon", SCHOOL, "vo"),
        ),
        PASS,
    )


@pytest.fixture(scope="module")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    """Another CA: its certificates are valid, but not ours."""
    return init_dev_pki(
        tmp_path_factory.mktemp("foreign"),
        _parties(("mbo", "Regio College Oost", MBO, "mbo")),
        PASS,
    )


@pytest.fixture(scope="module")
def passphrase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "passphrase"
    path.write_bytes(PASS + b"\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def server(pki: PkiLayout) -> Iterator[MboSoapServer]:
    with MboSoapServer(pki.root, "mbo", PASS, hub_oin=HUB, impostor="other") as mbo:
        mbo.slow_seconds = 1.5
        yield mbo


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        request.getfixturevalue("server").reset()


@pytest.fixture
def transport() -> Iterator[SoapDeliveryTransport]:
    t = SoapDeliveryTransport()
    yield t
    t.close()


def _route(url: str, pki: PkiLayout, passphrase_file: Path, **extra: str) -> Route:
    settings = {
        "endpoint": url,
        "oin": MBO.value,
        "pki_dir": str(pki.root),
        "passphrase_file": str(passphrase_file),
        "timeout": "5",
        **extra,
    }
    return Route("34CD", "soap", settings)


def _outgoing(payload: bytes = DOSSIER) -> Outgoing:
    return Outgoing(f"urn:uuid:{uuid.uuid4()}", "DOS-2025-000123", payload, "")


def test_round_trip_delivers_once_and_a_resend_stores_nothing_new(
    server: MboSoapServer,
    pki: PkiLayout,
    passphrase_file: Path,
    transport: SoapDeliveryTransport,
) -> None:
    route = _route(server.url, pki, passphrase_file)
    first, second = _outgoing(), _outgoing()
    results = transport.send(route, [first, second])
    assert [(r.message_id, r.delivered, r.detail) for r in results] == [
        (first.message_id, True, "accepted"),
        (second.message_id, True, "accepted"),
    ]
    assert server.stores == 2
    stored = parse_untrusted(server.received[first.message_id])
    assert stored.findtext("{urn:overstap:dossier:1}metadata/{urn:overstap:dossier:1}dossierid")
    # The outbox resends after a crash with the same MessageID: the receiver keeps one copy.
    again = transport.send(route, [first])
    assert again[0].delivered and server.stores == 2


# (misbehaviour, retryable, detail); every one is followed by a resend that must deliver.
CASES = [
    ("http_500", True, "HTTP 500"),
    ("server_fault", True, "soap:Server 0051"),
    ("client_fault", False, "soap:Client 0004"),
    ("wrong_relates_to", True, "reply refused [WSS-RELATES-TO]"),
    ("unsigned_reply", True, "reply refused [WSS-MISSING]"),
    ("reply_signed_by_other", True, "reply refused [CERT-OIN]"),
    ("store_then_500", True, "HTTP 500"),
    ("rejected_receipt", False, "rejected APPROVAL-TOESTEMMING"),
]
STORING = {"wrong_relates_to", "unsigned_reply", "reply_signed_by_other", "store_then_500"}


@pytest.mark.parametrize(("kind", "retryable", "detail"), CASES, ids=[c[0] for c in CASES])
def test_misbehaviour_maps_to_the_right_result_and_a_resend_stores_once(
    server: MboSoapServer,
    pki: PkiLayout,
    passphrase_file: Path,
    transport: SoapDeliveryTransport,
    kind: str,
    retryable: bool,
    detail: str,
) -> None:
    route = _route(server.url, pki, passphrase_file)
    message = _outgoing()
    server.misbehave(kind)
    [result] = transport.send(route, [message])
    assert (result.delivered, result.retryable, result.detail) == (False, retryable, detail)
    # The reply-side kinds stored the dossier although the sender could not trust the answer.
    assert server.stores == (1 if kind in STORING else 0)
    [again] = transport.send(route, [message])
    assert again.delivered, again.detail
    assert server.stores == 1 and list(server.received) == [message.message_id]


def test_timeout_is_retryable_and_the_late_delivery_is_not_stored_twice(
    server: MboSoapServer, pki: PkiLayout, passphrase_file: Path, transport: SoapDeliveryTransport
) -> None:
    route = _route(server.url, pki, passphrase_file, timeout="0.5")
    message, later = _outgoing(), _outgoing()
    server.misbehave("timeout")
    results = transport.send(route, [message, later])
    assert [(r.delivered, r.retryable) for r in results] == [(False, True), (False, True)]
    assert results[0].detail == "timeout"
    assert results[1].detail == "not attempted: connection failed"
    deadline = time.monotonic() + 5
    while server.stores == 0 and time.monotonic() < deadline:  # the slow answer still stores
        time.sleep(0.05)
    assert server.stores == 1
    assert all(r.delivered for r in transport.send(route, [message, later]))
    assert server.stores == 2


def test_client_refuses_a_server_certificate_of_another_ca(
    pki: PkiLayout, foreign_pki: PkiLayout, passphrase_file: Path, transport: SoapDeliveryTransport
) -> None:
    with MboSoapServer(pki.root, "mbo", PASS, hub_oin=HUB, tls_pki_dir=foreign_pki.root) as mbo:
        [result] = transport.send(_route(mbo.url, pki, passphrase_file), [_outgoing()])
        assert (result.delivered, result.retryable) == (False, True)
        assert result.detail == "TLS handshake failed"
        assert mbo.stores == 0


def test_xsd_invalid_body_is_client_fault_0004_and_permanent(
    server: MboSoapServer, pki: PkiLayout, passphrase_file: Path, transport: SoapDeliveryTransport
) -> None:
    invalid = b'<dossier xmlns="urn:overstap:dossier:1"><onzin/></dossier>'
    [result] = transport.send(_route(server.url, pki, passphrase_file), [_outgoing(invalid)])
    assert (result.delivered, result.retryable, result.detail) == (False, False, "soap:Client 0004")
    assert server.stores == 0


# --- requests posted by hand ---------------------------------------------------------------------


def _tls(pki: PkiLayout, slug: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.trust_bundle_path))
    if slug is not None:
        context.load_cert_chain(pki.cert_path(slug, "tls"), pki.key_path(slug, "tls"), PASS)
    return context


def _signed_request(pki: PkiLayout, server: MboSoapServer, *, sign: bool = True) -> bytes:
    envelope = build_envelope(
        etree.fromstring(DOSSIER),
        to=f"{server.url}?oin={MBO.value}",
        action=ACTION,
        message_id=f"urn:uuid:{uuid.uuid4()}",
        from_=f"http://www.w3.org/2005/08/addressing/anonymous?oin={HUB.value}",
        reply_to="http://www.w3.org/2005/08/addressing/anonymous",
    )
    if sign:
        signer = WsSigner.from_files(
            pki.key_path("hub", "sign"), pki.cert_path("hub", "sign"), PASS
        )
        signer.sign(envelope, now=datetime.now(UTC))
    return canonical_bytes(envelope)


def _post(
    server: MboSoapServer, data: bytes, context: ssl.SSLContext, soap_action: str = ACTION
) -> tuple[int, Any]:
    port = int(server.url.split(":")[2].split("/")[0])
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        connection.request(
            "POST",
            "/dossier",
            body=data,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{soap_action}"'},
        )
        response = connection.getresponse()
        return response.status, parse_untrusted(response.read())
    finally:
        connection.close()


def _fault(root: Any) -> tuple[str | None, str]:
    fault = root.find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault")
    return fault.findtext("faultcode"), (fault.findtext("faultstring") or "")[:4]


def test_server_refuses_a_client_without_a_certificate_in_the_handshake(
    server: MboSoapServer, pki: PkiLayout
) -> None:
    with pytest.raises((ssl.SSLError, OSError)):
        _post(server, _signed_request(pki, server), _tls(pki, None))
    assert server.stores == 0


def test_server_refuses_a_tls_client_that_is_not_the_hub(
    server: MboSoapServer, pki: PkiLayout
) -> None:
    # A valid certificate of our CA, of a school: TLS lets it in, the OIN check does not.
    status, root = _post(server, _signed_request(pki, server), _tls(pki, "vo"))
    assert (status, _fault(root)) == (500, ("soap:Client", "0002"))
    assert server.stores == 0


def test_server_refuses_an_unsigned_request_with_client_fault_0002(
    server: MboSoapServer, pki: PkiLayout
) -> None:
    status, root = _post(server, _signed_request(pki, server, sign=False), _tls(pki, "hub"))
    assert (status, _fault(root)) == (500, ("soap:Client", "0002"))
    assert server.stores == 0


def test_server_refuses_a_soapaction_that_is_not_the_wsa_action(
    server: MboSoapServer, pki: PkiLayout
) -> None:
    data = _signed_request(pki, server)
    status, root = _post(server, data, _tls(pki, "hub"), soap_action=ACTION + "X")
    assert (status, _fault(root)) == (500, ("soap:Client", "0003"))
    status, root = _post(server, data, _tls(pki, "hub"))
    assert status == 200 and server.stores == 1
    receipt = root.find(f"{{{SOAP_NS}}}Body/{{urn:overstap:receipt:1}}ontvangstbevestiging")
    assert validate(receipt, "receipt") == []
    [message_id] = server.received
    assert receipt.findtext("{urn:overstap:receipt:1}betreftberichtid") == message_id


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"endpoint": "http://127.0.0.1:1/dossier"}, "endpoint"),
        ({"oin": "123"}, "oin"),
        ({"timeout": "0"}, "timeout"),
        # No key under the named PKI directory (an empty value means the hub's own PKI).
        ({"pki_dir": "/nonexistent/pki"}, "signing key sign.key.pem"),
    ],
)
def test_bad_route_settings_are_configuration_errors(
    pki: PkiLayout,
    passphrase_file: Path,
    transport: SoapDeliveryTransport,
    change: dict[str, str],
    setting: str,
) -> None:
    route = _route("https://127.0.0.1:1/dossier", pki, passphrase_file, **change)
    with pytest.raises(ConfigurationError) as exc:
        transport.send(route, [_outgoing()])
    assert exc.value.setting == setting
