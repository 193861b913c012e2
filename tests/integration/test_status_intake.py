"""The hub's SOAP status intake (MeldStatus) over real HTTPS with mutual TLS.

An mbo institution from a dev PKI signs status messages with its own key and posts them with
its own TLS client certificate; the hub's answers are checked with `WsVerifier` as the mbo
would check them, and the store is checked for what the reports did.
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from hub_setup import MBO, hub_with_dossiers
from lxml import etree  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Engine, func, select, update

from connectors.soap_delivery import TlsAdapter
from connectors.status_server import StatusIntakeServer
from overstap.bootstrap import HubContext
from overstap.crypto.trust import TrustStore
from overstap.domain.identifiers import Brin, Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.services.pki import DEV_HUB_OIN
from overstap.services.status_intake import ACTION, RESPONSE_ACTION, handle_status_request
from overstap.store.engine import make_engine
from overstap.store.tables import dossier, registration, status_message
from overstap.xml.dsig import canonical_bytes
from overstap.xml.safe import parse_untrusted
from overstap.xml.schemas import validate
from overstap.xml.wssec import SOAP_NS, VerifiedMessage, WsSigner, WsVerifier, build_envelope

PASS = b"test-passphrase-long-enough"
HUB = Oin.parse(DEV_HUB_OIN)
MBO_OIN = Oin.for_brin(MBO)
STRANGER = Oin.for_brin(Brin("56EF"))  # trusted certificates, but not a registered institution
ST = "urn:overstap:status:1"
RC = "{urn:overstap:receipt:1}"
ADULT = ("LL-1002", "123456009")  # students with a BSN of their own in hub_setup
SECRET = ("LL-1004", "987654305")
BAD_BSN = "123456789"  # fails the elfproef


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
def signers(pki: PkiLayout) -> dict[str, WsSigner]:
    return {
        slug: WsSigner.from_files(pki.key_path(slug, "sign"), pki.cert_path(slug, "sign"), PASS)
        for slug in ("mbo", "stranger")
    }


@pytest.fixture
def hub(engine: Engine, tmp_path: Path) -> HubContext:
    ctx = hub_with_dossiers(engine, tmp_path, "soap")
    with engine.begin() as conn:
        # Reports apply to dossiers that reached the institution.
        conn.execute(update(dossier).values(state="afgeleverd"))
    return ctx


@pytest.fixture
def server(hub: HubContext, pki: PkiLayout) -> Iterator[StatusIntakeServer]:
    with StatusIntakeServer(hub, pki_dir=pki.root, passphrase=PASS) as s:
        yield s


def _session(pki: PkiLayout, party: str) -> requests.Session:
    context = ssl.create_default_context(cafile=str(pki.trust_bundle_path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(
        str(pki.cert_path(party, "tls")), str(pki.key_path(party, "tls")), password=PASS
    )
    session = requests.Session()
    session.trust_env = False
    session.verify = str(pki.trust_bundle_path)
    session.mount("https://", TlsAdapter(context))
    return session


def _melding(
    berichtid: str,
    student: tuple[str, str],
    status: str,
    *,
    mbo: str = str(MBO),
    tijdstip: str = "2026-03-10T09:00:00Z",
) -> str:
    leerlingid, bsn = student
    return f"""<statusmelding><berichtid>{berichtid}</berichtid><tijdstip>{tijdstip}</tijdstip>
<mboinstelling><brincode>{mbo}</brincode></mboinstelling><voschool><brincode>12AB</brincode>
</voschool><bsn>{bsn}</bsn><leerlingid>{leerlingid}</leerlingid><status>{status}</status>
<statusdatum>2026-03-09</statusdatum></statusmelding>"""


def _body(*meldingen: str) -> bytes:
    return f'<statusmeldingen xmlns="{ST}">{"".join(meldingen)}</statusmeldingen>'.encode()


def _request(
    signer: WsSigner | None,
    body: bytes,
    *,
    message_id: str | None = None,
    action: str = ACTION,
    to_oin: Oin = HUB,
) -> tuple[bytes, str, str]:
    """(envelope bytes, MessageID, SignatureValue) of a request as an mbo sends it."""
    message_id = message_id or f"urn:uuid:{uuid.uuid4()}"
    envelope = build_envelope(
        etree.fromstring(body),
        to=f"https://hub.example.invalid/status?oin={to_oin.value}",
        from_=f"https://mbo.example.invalid/?oin={MBO_OIN.value}",
        action=action,
        message_id=message_id,
    )
    value = "" if signer is None else signer.sign(envelope, now=datetime.now(UTC))
    return canonical_bytes(envelope), message_id, value


def _post(
    server: StatusIntakeServer,
    pki: PkiLayout,
    data: bytes,
    *,
    tls_party: str = "mbo",
    soap_action: str = ACTION,
) -> requests.Response:
    with _session(pki, tls_party) as session:
        return session.post(
            server.url,
            data=data,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{soap_action}"'},
            timeout=10,
        )


def _receipt(
    response: requests.Response, pki: PkiLayout, message_id: str, signature: str
) -> tuple[VerifiedMessage, Any]:
    assert response.status_code == 200, response.text
    verified = WsVerifier(TrustStore.from_pem_file(pki.trust_bundle_path)).verify(
        response.content,
        expected_oin=HUB,
        require_confirmation=signature,
        expected_relates_to=message_id,
    )
    assert verified.action == RESPONSE_ACTION
    receipt = verified.body_child
    assert validate(receipt, "receipt") == []
    assert receipt.findtext(f"{RC}betreftberichtid") == message_id
    return verified, receipt


def _fouten(receipt: Any) -> list[tuple[str | None, str | None]]:
    return [
        (f.findtext(f"{RC}code"), f.findtext(f"{RC}betreft")) for f in receipt.iter(f"{RC}fout")
    ]


def _fault(response: requests.Response) -> tuple[str, str]:
    assert response.status_code == 500
    fault = parse_untrusted(response.content).find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    assert fault is not None
    return fault.findtext("faultcode") or "", (fault.findtext("faultstring") or "")[:4]


def _registrations(ctx: HubContext) -> dict[str, str]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(registration.c.dossier_id, registration.c.status).where(
                registration.c.mbo_brin == str(MBO)
            )
        )
        return {row.dossier_id: row.status for row in rows}


def _ledger(ctx: HubContext) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(status_message)).scalar_one())


def test_accepted_reports_are_registered_and_the_receipt_is_signed_for_the_request(
    server: StatusIntakeServer, pki: PkiLayout, signers: dict[str, WsSigner], hub: HubContext
) -> None:
    data, message_id, signature = _request(
        signers["mbo"],
        _body(_melding("MSG-1", ADULT, "ingeschreven"), _melding("MSG-2", SECRET, "ontvangen")),
    )
    _, receipt = _receipt(_post(server, pki, data), pki, message_id, signature)
    assert receipt.findtext(f"{RC}resultaat") == "accepted"
    assert _fouten(receipt) == []
    assert _registrations(hub) == {
        "DOS-2025-000002": "ingeschreven",
        "DOS-2025-000004": "ontvangen",
    }


def test_a_bad_report_is_refused_alone_and_the_others_apply(
    server: StatusIntakeServer, pki: PkiLayout, signers: dict[str, WsSigner], hub: HubContext
) -> None:
    data, message_id, signature = _request(
        signers["mbo"],
        _body(
            _melding("MSG-1", ADULT, "ingeschreven"),
            _melding("MSG-BAD", ("LL-1004", BAD_BSN), "ontvangen"),
            _melding("MSG-3", SECRET, "ontvangen"),
        ),
    )
    _, receipt = _receipt(_post(server, pki, data), pki, message_id, signature)
    assert receipt.findtext(f"{RC}resultaat") == "accepted"
    assert _fouten(receipt) == [("BSN-ELFPROEF", "MSG-BAD")]
    assert BAD_BSN.encode() not in etree.tostring(receipt)  # no personal data in the receipt
    assert set(_registrations(hub)) == {"DOS-2025-000002", "DOS-2025-000004"}


def test_a_report_about_another_institution_is_refused_and_all_refused_is_rejected(
    server: StatusIntakeServer, pki: PkiLayout, signers: dict[str, WsSigner], hub: HubContext
) -> None:
    data, message_id, signature = _request(
        signers["mbo"], _body(_melding("MSG-1", ADULT, "ingeschreven", mbo="77ZZ"))
    )
    _, receipt = _receipt(_post(server, pki, data), pki, message_id, signature)
    assert receipt.findtext(f"{RC}resultaat") == "rejected"
    assert _fouten(receipt) == [("STATUS-SENDER", "MSG-1")]
    assert _registrations(hub) == {}
    assert _ledger(hub) == 0


def test_the_same_request_twice_is_processed_once(
    server: StatusIntakeServer, pki: PkiLayout, signers: dict[str, WsSigner], hub: HubContext
) -> None:
    body = _body(
        _melding("MSG-1", ADULT, "ingeschreven"),
        _melding("MSG-BAD", ("LL-1004", BAD_BSN), "ontvangen"),
    )
    message_id = f"urn:uuid:{uuid.uuid4()}"
    receipts = []
    for _ in range(2):
        # A resend is signed afresh (new Timestamp) but keeps its MessageID and berichtids.
        data, _, signature = _request(signers["mbo"], body, message_id=message_id)
        receipts.append(_receipt(_post(server, pki, data), pki, message_id, signature)[1])
        assert _ledger(hub) == 1
    first, second = receipts
    for name in ("berichtid", "betreftberichtid", "resultaat"):
        assert first.findtext(RC + name) == second.findtext(RC + name)
    assert _fouten(first) == _fouten(second) == [("BSN-ELFPROEF", "MSG-BAD")]
    with hub.engine.connect() as conn:
        outcomes = conn.execute(select(status_message.c.outcome)).scalars().all()
    assert outcomes == ["applied"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unsigned", ("soap:Client", "0002")),
        ("wrong_soap_action", ("soap:Client", "0003")),
        ("wrong_action", ("soap:Client", "0003")),
        ("schema_invalid", ("soap:Client", "0004")),
        ("unregistered_signer", ("soap:Client", "0002")),
        ("tls_of_another_party", ("soap:Client", "0002")),
        ("to_another_party", ("soap:Client", "0011")),
        ("not_xml", ("soap:Client", "0001")),
    ],
)
def test_refused_requests_get_a_client_fault_and_change_nothing(
    server: StatusIntakeServer,
    pki: PkiLayout,
    signers: dict[str, WsSigner],
    hub: HubContext,
    case: str,
    expected: tuple[str, str],
) -> None:
    good = _body(_melding("MSG-1", ADULT, "ingeschreven"))
    signer: WsSigner | None = signers["mbo"]
    body, action, soap_action, tls_party, to_oin = good, ACTION, ACTION, "mbo", HUB
    if case == "unsigned":
        signer = None
    elif case == "wrong_soap_action":
        soap_action = "urn:overstap:signal:1:LeverSignalen"
    elif case == "wrong_action":
        action = soap_action = "urn:overstap:signal:1:LeverSignalen"
    elif case == "schema_invalid":
        body = _body(_melding("MSG-1", ADULT, "verzonnen_status"))
    elif case == "unregistered_signer":
        signer, tls_party = signers["stranger"], "stranger"
    elif case == "tls_of_another_party":
        tls_party = "stranger"
    elif case == "to_another_party":
        to_oin = STRANGER
    data, _, _ = _request(signer, body, action=action, to_oin=to_oin)
    if case == "not_xml":
        data = b"<soap:Envelope"
    response = _post(server, pki, data, tls_party=tls_party, soap_action=soap_action)
    assert _fault(response) == expected
    assert b"123456009" not in response.content
    assert _registrations(hub) == {} and _ledger(hub) == 0


def test_a_client_without_certificate_fails_the_handshake(
    server: StatusIntakeServer, pki: PkiLayout
) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(server.url, data=b"", verify=str(pki.trust_bundle_path), timeout=5)


def test_in_process_handling_needs_no_transport(
    pki: PkiLayout, signers: dict[str, WsSigner], hub: HubContext
) -> None:
    trust = TrustStore.from_pem_file(pki.trust_bundle_path)
    hub_signer = WsSigner.from_files(
        pki.key_path("hub", "sign"), pki.cert_path("hub", "sign"), PASS
    )
    data, message_id, signature = _request(
        signers["mbo"], _body(_melding("MSG-1", ADULT, "ingeschreven"))
    )
    status, answer = handle_status_request(
        hub,
        data,
        tls_client_oin=None,
        soap_action=ACTION,
        verifier=WsVerifier(trust),
        signer=hub_signer,
        now=datetime.now(UTC),
    )
    assert status == 200
    verified = WsVerifier(trust).verify(
        answer, expected_oin=HUB, require_confirmation=signature, expected_relates_to=message_id
    )
    assert verified.body_child.findtext(f"{RC}resultaat") == "accepted"
    assert _registrations(hub) == {"DOS-2025-000002": "ingeschreven"}


def test_overstap_serve_answers_until_sigint(
    sqlite_template: Path, pki: PkiLayout, signers: dict[str, WsSigner], tmp_path: Path
) -> None:
    db = tmp_path / "cli.db"
    shutil.copyfile(sqlite_template, db)
    engine = make_engine(f"sqlite:///{db}")
    try:
        hub_with_dossiers(engine, tmp_path / "setup", "soap")
        with engine.begin() as conn:
            conn.execute(update(dossier).values(state="afgeleverd"))
    finally:
        engine.dispose()
    env = {
        **os.environ,
        "OVERSTAP_HOME": str(tmp_path / "home"),
        "OVERSTAP_DATABASE_URL": f"sqlite:///{db}",
        "OVERSTAP_PKI_DIR": str(pki.root),
        "OVERSTAP_KEY_PASSPHRASE": PASS.decode(),
        "OVERSTAP_PSEUDONYM_KEY": bytes(32).hex(),  # hub_with_dossiers' key: reports match
        "COLUMNS": "200",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "overstap.cli.main", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on https://127.0.0.1:" in line, line + proc.stderr.read()  # type: ignore[union-attr]
        url = line.split()[-1]
        data, message_id, signature = _request(
            signers["mbo"], _body(_melding("MSG-1", ADULT, "ingeschreven"))
        )
        with _session(pki, "mbo") as session:
            response = session.post(
                url, data=data, headers={"SOAPAction": f'"{ACTION}"'}, timeout=10
            )
        _, receipt = _receipt(response, pki, message_id, signature)
        assert receipt.findtext(f"{RC}resultaat") == "accepted"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(registration.c.dossier_id, registration.c.status)).all()
        assert [tuple(r) for r in rows] == [("DOS-2025-000002", "ingeschreven")]
    finally:
        engine.dispose()
