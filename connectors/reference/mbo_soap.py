"""Reference mbo dossier service: operation `LeverDossier` of `xsd/dossier-service.wsdl` (and,
with `service=SIGNAL_SERVICE`, a municipality's `LeverSignalen` of `xsd/signal-service.wsdl`).

    with MboSoapServer(pki_dir, "mbo", passphrase, hub_oin=hub_oin) as mbo:
        route = Route("34CD", "soap", {"endpoint": mbo.url, "oin": mbo.oin.value, ...})

A real peer for `connectors.soap_delivery`, held to the Edukoppeling profile (xsd/README.md,
"Transport: WSDLs and Edukoppeling") on real HTTPS on 127.0.0.1 with mutual TLS: TLS 1.2+, a
client certificate is required and must chain to the dev CA bundle (a client without one fails
the handshake). Per request, in this order:

0. the TLS client certificate carries the hub's OIN in its subject serialNumber (else 0002);
1. `WsVerifier.verify(expected_oin=hub)`: the hardened parse, the 2W-be-S shape and the
   signature (Client fault with `WsSecurityRejected.fault_code`, 0001-0011);
2. SOAPAction (HTTP header) == wsa:Action == LeverDossier (0003); wsa:To names this party's
   OIN as `?oin=` (0011);
3. the Body child is a `dossier` valid against dossier.xsd (0004);
4. deduplication on wsa:MessageID: a MessageID seen before stores nothing new and is answered
   with the receipt it got the first time (so a sender may resend after any failure);
5. a signed response: Action LeverDossierResponse, RelatesTo = the request's MessageID,
   SignatureConfirmation of the request's SignatureValue, and an `ontvangstbevestiging`
   (receipt.xsd) with `betreftberichtid` = the MessageID and resultaat `accepted`.

Faults are SOAP 1.1 faults with HTTP 500 (SOAP 1.1 section 6.2): faultcode `soap:Client` or
`soap:Server`, and a faultstring that starts with the Edukoppeling code ("0004 ..."). They are
not signed: the client can rely on them only because the TLS channel is mutually
authenticated, and a fault makes the hub do nothing worse than retry or dead-letter.

Misbehaviour for tests: `misbehave(kind, times)`, see `MISBEHAVIOURS`. The server keeps what it
stored in memory (`received`: MessageID -> dossier bytes; `stores`: how often anything was
stored). Not a production receiver: no persistence, no replay window beyond the process.

HTTP keep-alive is supported (one TLS handshake per connection, not per delivery): wsgiref's
handler answers one HTTP/1.0 request per connection, so `_Handler.handle` loops over requests.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import ServerHandler
from wsgiref.types import StartResponse, WSGIEnvironment

from cryptography import x509
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from connectors.reference import BadRequest, ServerThread, read_body
from connectors.tls_wsgi import TlsRequestHandler, TlsWsgiServer, send_response
from overstap.crypto.trust import TrustStore, oin_of
from overstap.domain.identifiers import Oin
from overstap.pki import PkiLayout
from overstap.xml.dsig import canonical_bytes
from overstap.xml.schemas import validate
from overstap.xml.wssec import SOAP_NS, WsSecurityRejected, WsSigner, WsVerifier, build_envelope


@dataclass(frozen=True, slots=True)
class Service:
    """What one reference service takes: its path, Action, Body element and schema."""

    path: str
    action: str
    body_tag: str
    schema: str

    @property
    def response_action(self) -> str:
        return self.action + "Response"


# An mbo institution's dossier service, and a municipality's signal service (LeverSignalen of
# xsd/signal-service.wsdl): the same Edukoppeling rules, another operation.
DOSSIER_SERVICE: Final = Service(
    "/dossier", "urn:overstap:dossier:1:LeverDossier", "{urn:overstap:dossier:1}dossier", "dossier"
)
SIGNAL_SERVICE: Final = Service(
    "/signal",
    "urn:overstap:signal:1:LeverSignalen",
    "{urn:overstap:signal:1}signaalbestand",
    "signal",
)
SERVICE_PATH: Final = DOSSIER_SERVICE.path
ACTION: Final = DOSSIER_SERVICE.action
RECEIPT_NS: Final = "urn:overstap:receipt:1"
ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
MAX_REQUEST_BYTES: Final = 20 * 1024 * 1024  # the hardened parser's own default limit
SOCKET_TIMEOUT: Final = 30.0  # a client that stalls mid-request does not hold a thread forever

MISBEHAVIOURS: Final = frozenset(
    {
        "http_500",  # plain HTTP 500, no SOAP fault, nothing stored
        "timeout",  # sleep `slow_seconds` (longer than the client waits), then answer normally
        "server_fault",  # soap:Server 0051, nothing stored
        "client_fault",  # soap:Client 0004, nothing stored
        "wrong_relates_to",  # stores, answers with RelatesTo naming another message
        "unsigned_reply",  # stores, answers without wsse:Security
        "reply_signed_by_other",  # stores, answers signed by another party's valid key
        "store_then_500",  # stores, then answers HTTP 500: delivered, but the sender never heard
        "rejected_receipt",  # a signed receipt `rejected` with fout/code REJECTION_CODE, no store
    }
)

REJECTION_CODE: Final = "APPROVAL-TOESTEMMING"  # a profile rule id, as receipt-rejected.xml
_CLOSE: Final = "overstap.close_connection"
_SOAP = f"{{{SOAP_NS}}}"
_R = f"{{{RECEIPT_NS}}}"


class _Fault(Exception):
    def __init__(self, side: str, code: str, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.side = side  # "Client" or "Server"
        self.code = code
        self.text = text


class _Handler(TlsRequestHandler):
    """With HTTP/1.1 keep-alive: a sender's batch reuses its connection."""

    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT

    def handle(self) -> None:
        self.close_connection = True
        while True:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline or len(self.raw_requestline) > 65536:
                return
            if not self.parse_request():
                return
            environ = self.get_environ()
            # wsgiref's stubs type wfile narrower than what it is given by http.server.
            handler: Any = ServerHandler(
                self.rfile, cast(Any, self.wfile), self.get_stderr(), environ, multithread=True
            )
            handler.http_version = "1.1"
            handler.request_handler = self  # wsgiref logs through it
            handler.run(self.server.get_app())  # type: ignore[attr-defined]
            if self.close_connection or environ.get(_CLOSE):
                return


class MboSoapServer(ServerThread):
    """An mbo institution's dossier service on `https://127.0.0.1:<port>/dossier`; with
    `service=SIGNAL_SERVICE`, a municipality's signal service on `.../signal`.

    `party` is the slug of the mbo in `pki_dir` (its "sign" key signs responses, its "tls"
    certificate serves HTTPS unless `tls_pki_dir` names another PKI to take it from);
    `impostor` is the slug of another party whose valid signing key signs the
    "reply_signed_by_other" replies.
    """

    def __init__(
        self,
        pki_dir: Path,
        party: str,
        passphrase: bytes,
        *,
        hub_oin: Oin,
        tls_pki_dir: Path | None = None,
        impostor: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        service: Service = DOSSIER_SERVICE,
    ) -> None:
        self.service = service
        layout = PkiLayout(pki_dir)
        self._signer = WsSigner.from_files(
            layout.key_path(party, "sign"), layout.cert_path(party, "sign"), passphrase
        )
        self._impostor = (
            None
            if impostor is None
            else WsSigner.from_files(
                layout.key_path(impostor, "sign"), layout.cert_path(impostor, "sign"), passphrase
            )
        )
        own_oin = oin_of(self._signer.certificate)
        if own_oin is None:
            raise ValueError(f"the signing certificate of {party} carries no OIN")
        self.oin: Oin = own_oin
        self.hub_oin = hub_oin
        self._verifier = WsVerifier(TrustStore.from_pem_file(layout.trust_bundle_path), clock)
        self._clock = clock
        tls_layout = PkiLayout(tls_pki_dir) if tls_pki_dir is not None else layout
        self._tls = _server_context(
            tls_layout.cert_path(party, "tls"),
            tls_layout.key_path(party, "tls"),
            passphrase,
            layout.trust_bundle_path,
        )
        self.slow_seconds = 3.0
        self.received: dict[str, bytes] = {}
        self.stores = 0
        # MessageID -> the receipt as first sent: a duplicate gets these same bytes.
        self._receipts: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._misbehaviour: list[str] = []

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server is not started")
        return f"https://127.0.0.1:{self._server.server_address[1]}{self.service.path}"

    def _make_server(self) -> TlsWsgiServer:
        server = TlsWsgiServer(("127.0.0.1", 0), _Handler)
        server.tls = self._tls
        server.set_app(self.app)
        return server

    # --- test controls -----------------------------------------------------------------------

    def misbehave(self, kind: str, times: int = 1) -> None:
        """Answer the next `times` requests with misbehaviour `kind` (see `MISBEHAVIOURS`)."""
        if kind not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {kind!r}")
        if kind == "reply_signed_by_other" and self._impostor is None:
            raise ValueError("reply_signed_by_other needs an impostor party")
        with self._lock:
            self._misbehaviour.extend([kind] * times)

    def reset(self) -> None:
        """Forget what was received and any queued misbehaviour (between tests)."""
        with self._lock:
            self._misbehaviour.clear()
            self.received.clear()
            self._receipts.clear()
            self.stores = 0

    def _next_misbehaviour(self) -> str | None:
        with self._lock:
            return self._misbehaviour.pop(0) if self._misbehaviour else None

    # --- WSGI --------------------------------------------------------------------------------

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.service.path:
            return send_response(start_response, 404, b"not found", "text/plain")
        if environ["REQUEST_METHOD"] != "POST":
            return send_response(start_response, 405, b"method not allowed", "text/plain")
        try:
            data = read_body(environ, MAX_REQUEST_BYTES)
        except BadRequest:
            # The body was not read: what follows on this connection is not a request line.
            environ[_CLOSE] = True
            return send_response(start_response, 413, b"request too large", "text/plain")
        kind = self._next_misbehaviour()
        if kind == "http_500":
            return send_response(start_response, 500, b"internal server error", "text/plain")
        if kind == "server_fault":
            return _fault(start_response, _Fault("Server", "0051", "Service niet beschikbaar"))
        if kind == "client_fault":
            return _fault(start_response, _Fault("Client", "0004", "Bericht is niet XSD-conform"))
        if kind == "timeout":
            time.sleep(self.slow_seconds)
        try:
            answer = self._answer(environ, data, kind)
        except _Fault as fault:
            return _fault(start_response, fault)
        if kind == "store_then_500":
            return send_response(start_response, 500, b"internal server error", "text/plain")
        return send_response(start_response, 200, answer, "text/xml; charset=utf-8")

    def _answer(self, environ: WSGIEnvironment, data: bytes, kind: str | None) -> bytes:
        self._check_peer(environ.get("overstap.peer_certificate"))
        try:
            message = self._verifier.verify(data, expected_oin=self.hub_oin)
        except WsSecurityRejected as exc:
            # rule ids only: the reason never quotes the Body, but the faultstring stays terse.
            raise _Fault("Client", exc.fault_code, f"refused [{exc.rule}]") from None
        soap_action = environ.get("HTTP_SOAPACTION", "").strip().strip('"')
        if soap_action != message.action or message.action != self.service.action:
            raise _Fault("Client", "0003", "Ongeldige SOAPAction")
        if _oin_in(message.to) != self.oin.value:
            raise _Fault("Client", "0011", "wsa:To names another party")
        dossier = message.body_child
        if dossier.tag != self.service.body_tag or validate(dossier, self.service.schema):
            raise _Fault("Client", "0004", "Bericht is niet XSD-conform")
        if kind == "rejected_receipt":
            receipt = _receipt(message.message_id, self._clock(), refused=REJECTION_CODE)
        else:
            receipt = self._store(message.message_id, dossier)
        # Our own bytes, made by `_receipt`: nothing from outside, so no hardened parse.
        body = etree.fromstring(receipt)
        relates_to = "urn:uuid:" + str(uuid.uuid4()) if kind == "wrong_relates_to" else None
        envelope = build_envelope(
            body,
            to=ANONYMOUS,
            action=self.service.response_action,
            message_id=f"urn:uuid:{uuid.uuid4()}",
            relates_to=relates_to or message.message_id,
        )
        if kind != "unsigned_reply":
            signer = self._impostor if kind == "reply_signed_by_other" else self._signer
            assert signer is not None  # misbehave() refuses the kind without an impostor
            signer.sign(envelope, now=self._clock(), confirm=message.signature_value)
        return canonical_bytes(envelope)

    def _check_peer(self, der: object) -> None:
        # The TLS layer proved the client holds a certificate of our CA; which party it is, is
        # checked here: the hub and nobody else may deliver (also when the signature is valid).
        if not isinstance(der, bytes):
            raise _Fault("Client", "0002", "no client certificate")
        if oin_of(x509.load_der_x509_certificate(der)) != self.hub_oin:
            raise _Fault("Client", "0002", "client certificate is not the hub's")

    def _store(self, message_id: str, dossier: Any) -> bytes:
        """The receipt for `message_id`; the dossier is stored only the first time it arrives."""
        with self._lock:
            known = self._receipts.get(message_id)
            if known is not None:
                return known
            receipt = _receipt(message_id, self._clock())
            self.received[message_id] = bytes(
                etree.tostring(dossier, xml_declaration=True, encoding="UTF-8")
            )
            self._receipts[message_id] = receipt
            self.stores += 1
            return receipt


def _oin_in(address: str | None) -> str | None:
    values = parse_qs(urlsplit(address or "").query).get("oin", [])
    return values[0] if len(values) == 1 else None


def _receipt(message_id: str, now: datetime, refused: str | None = None) -> bytes:
    """An ontvangstbevestiging (receipt.xsd): accepted, or rejected with the code `refused`."""
    root = etree.Element(_R + "ontvangstbevestiging", nsmap={None: RECEIPT_NS})
    etree.SubElement(root, _R + "berichtid").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(root, _R + "betreftberichtid").text = message_id
    etree.SubElement(root, _R + "ontvangen").text = now.astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    etree.SubElement(root, _R + "resultaat").text = "accepted" if refused is None else "rejected"
    if refused is not None:
        fout = etree.SubElement(root, _R + "fout")
        etree.SubElement(fout, _R + "code").text = refused
    return bytes(etree.tostring(root))


def _server_context(cert: Path, key: Path, passphrase: bytes, trust: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(trust))
    context.load_cert_chain(str(cert), str(key), password=passphrase)
    return context


def _fault(start_response: StartResponse, fault: _Fault) -> list[bytes]:
    envelope = etree.Element(_SOAP + "Envelope", nsmap={"soap": SOAP_NS})
    element = etree.SubElement(etree.SubElement(envelope, _SOAP + "Body"), _SOAP + "Fault")
    etree.SubElement(element, "faultcode").text = f"soap:{fault.side}"
    etree.SubElement(element, "faultstring").text = f"{fault.code} {fault.text}"
    # SOAP 1.1 section 6.2: a fault travels with HTTP 500, whoever is at fault.
    return send_response(start_response, 500, canonical_bytes(envelope), "text/xml; charset=utf-8")


__all__ = [
    "ACTION",
    "DOSSIER_SERVICE",
    "MISBEHAVIOURS",
    "REJECTION_CODE",
    "SERVICE_PATH",
    "SIGNAL_SERVICE",
    "MboSoapServer",
    "Service",
]
