"""`SoapDeliveryTransport`: delivers dossiers with `LeverDossier` (xsd/dossier-service.wsdl) and
signal files with `LeverSignalen` (xsd/signal-service.wsdl), Edukoppeling 2W-be-S over mutual
TLS, one request per message; the payload's root element picks the operation.

Route settings (`Route.settings`): `endpoint` (the mbo's service URL), `oin` (the mbo's OIN),
`pki_dir` (our PKI: the "hub" party's "sign" and "tls" keys and the CA bundle; default the
hub's `OVERSTAP_PKI_DIR`), optionally
`passphrase_file` (else `overstap.pki.passphrase_from(pki_dir, os.environ)`) and `timeout`
(seconds for connect and for the answer, default 30).

Why zeep only reads the WSDL. zeep's plugins see the envelope after zeep built it, and zeep's
own WS-Security signs Body and Timestamp with SHA-1 (SECURITY.md); Edukoppeling wants every
WS-Addressing header signed with its own reference and a SignatureConfirmation checked on the
way back, which `overstap.xml.wssec` does. So the envelope is built by `build_envelope`, signed by
`WsSigner.sign`, and posted with the route's `requests.Session`; zeep loads our local copy of
the WSDL once per transport and supplies the operation's metadata: the SOAPAction (= wsa:Action),
the request element (the payload must be that element) and the response element. The session is
not posted through zeep's `Transport.post`, which logs whole messages at DEBUG level: a dossier
(and its BSN) must never reach a log.

Mutual TLS. The dev keys are encrypted PEM, which `requests`' `cert=` cannot read without a
decrypted copy on disk. Instead an `ssl.SSLContext` is built once per key set (TLS 1.2+, only
the CA bundle as trust, hostname checked, `load_cert_chain` with the passphrase: the key is
decrypted into OpenSSL's memory and never written) and given to the session through an
`HTTPAdapter`. Keys and certificates are loaded once per transport instance and PKI directory.
The session ignores proxy and netrc settings from the environment (`trust_env = False`).

Outcomes (`SendResult`; `detail` holds codes and ids only, never content):
- delivered: a verified response whose receipt answers our MessageID with `accepted`;
- permanent (`retryable=False`): a SOAP Client fault (0001-0011: the message itself is wrong),
  a `rejected` receipt, an HTTP 4xx other than 408/429;
- retryable: a Server fault (0051 included), 5xx, a timeout, a connection or TLS error, and a
  response that fails verification or does not fit (wrong RelatesTo, unsigned, signed by
  someone else, not a receipt for our MessageID). In the last cases we cannot know whether the
  dossier arrived; resending is safe because every attempt carries the same MessageID
  (`Outgoing.message_id`) and the receiver deduplicates on it (Edukoppeling; the reference
  server does). After a timeout or connection error the rest of the batch is not attempted
  (each gets a retryable result): the next messages would most likely wait just as long.
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import requests
import zeep
from requests.adapters import HTTPAdapter

from overstap.config import Settings
from overstap.crypto.trust import TrustStore
from overstap.domain.identifiers import Oin
from overstap.errors import ConfigurationError, InvalidRecord
from overstap.pki import PkiLayout, passphrase_from
from overstap.pki.load import load_certificate, required_oin
from overstap.ports import Outgoing, Route, SendResult
from overstap.xml.dsig import canonical_bytes
from overstap.xml.safe import parse_untrusted
from overstap.xml.schemas import validate, xsd_dir
from overstap.xml.wssec import SOAP_NS, WsSecurityRejected, WsSigner, WsVerifier, build_envelope

HUB_PARTY: Final = "hub"
DEFAULT_TIMEOUT: Final = 30.0
ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
# The services the hub delivers to, by the WSDL that describes each: a dossier goes to an mbo
# institution's LeverDossier, a signal file to a municipality's LeverSignalen. The payload's
# root element picks the operation.
_SERVICES: Final = (
    (
        "dossier-service.wsdl",
        "{urn:overstap:dossier-service:1}DossierSoap11Binding",
        "LeverDossier",
    ),
    ("signal-service.wsdl", "{urn:overstap:signal-service:1}SignaalSoap11Binding", "LeverSignalen"),
)
_RECEIPT_NS: Final = "urn:overstap:receipt:1"
_R: Final = f"{{{_RECEIPT_NS}}}"
_SOAP: Final = f"{{{SOAP_NS}}}"
_CLIENT_FAULTS: Final = frozenset(f"{n:04d}" for n in range(1, 12))


@dataclass(frozen=True, slots=True)
class _Operation:
    """What the WSDL says about LeverDossier; the response Action follows xsd/README.md."""

    soap_action: str
    request_tag: str
    response_tag: str

    @property
    def response_action(self) -> str:
        return self.soap_action + "Response"


@functools.cache
def _operations() -> dict[str, _Operation]:
    """request element -> what the WSDL says about its operation."""
    # zeep has no type hints; it stays behind Any. Our own WSDLs, read with zeep's hardening on.
    zeep_any: Any = zeep
    settings = zeep_any.Settings(
        strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    found: dict[str, _Operation] = {}
    for wsdl, binding, name in _SERVICES:
        client = zeep_any.Client(str(xsd_dir() / wsdl), settings=settings)
        operation = client.wsdl.bindings[binding].get(name)
        found[str(operation.input.body.qname)] = _Operation(
            soap_action=str(operation.soapaction),
            request_tag=str(operation.input.body.qname),
            response_tag=str(operation.output.body.qname),
        )
    return found


class TlsAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections use our `SSLContext` (client key held in memory)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


@dataclass(frozen=True)
class _Keys:
    """The hub's key material from one PKI directory, loaded once."""

    signer: WsSigner
    tls: ssl.SSLContext
    trust_bundle: Path
    hub_oin: Oin
    verifier: WsVerifier


@dataclass(frozen=True)
class _Peer:
    """One route's endpoint and session (connections are reused between messages)."""

    endpoint: str
    to: str
    oin: Oin
    timeout: float
    keys: _Keys
    session: requests.Session


class SoapDeliveryTransport:
    """The `DeliveryTransport` for SOAP receivers. Safe to share between threads only if each
    thread sends to its own routes (a `requests.Session` is not thread-safe)."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._keys: dict[tuple[str, str], _Keys] = {}
        self._peers: dict[str, tuple[dict[str, str], _Peer]] = {}  # recipient -> (settings, peer)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SoapDeliveryTransport({len(self._peers)} routes)"

    def close(self) -> None:
        with self._lock:
            for _, peer in self._peers.values():
                peer.session.close()
            self._peers.clear()

    def send(self, route: Route, messages: Sequence[Outgoing]) -> list[SendResult]:
        peer = self._peer(route)
        operations = _operations()
        results: list[SendResult] = []
        for number, message in enumerate(messages):
            result, connection_failed = _deliver(peer, operations, message, self._clock)
            results.append(result)
            if connection_failed:
                results += [
                    SendResult(m.message_id, False, True, "not attempted: connection failed")
                    for m in messages[number + 1 :]
                ]
                break
        return results

    # --- configuration -----------------------------------------------------------------------

    def _peer(self, route: Route) -> _Peer:
        """The route's session, made on first use and again only when its settings change."""
        settings = dict(route.settings)
        with self._lock:
            known = self._peers.get(route.recipient)
            if known is not None and known[0] == settings:
                return known[1]
            peer = self._new_peer(route)
            if known is not None:
                known[1].session.close()
            self._peers[route.recipient] = (settings, peer)
            return peer

    def _new_peer(self, route: Route) -> _Peer:
        endpoint = _required(route, "endpoint")
        if urlsplit(endpoint).scheme != "https":
            raise ConfigurationError("endpoint", f"route {route.recipient}: must be an https URL")
        try:
            oin = Oin.parse(_required(route, "oin"))
        except InvalidRecord as exc:
            raise ConfigurationError("oin", f"route {route.recipient}: {exc.reason}") from None
        try:
            timeout = float(route.settings.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise ConfigurationError("timeout", f"route {route.recipient}: not a number") from None
        if not timeout > 0:
            raise ConfigurationError("timeout", f"route {route.recipient}: must be positive")
        # The hub's own PKI unless the route names another (tests, a second hub identity).
        pki_dir = route.settings.get("pki_dir") or str(Settings.from_env().pki_dir)
        passphrase_file = route.settings.get("passphrase_file", "")
        keys = self._keys.get((pki_dir, passphrase_file))
        if keys is None:
            keys = _load_keys(Path(pki_dir), passphrase_file, self._clock)
            self._keys[pki_dir, passphrase_file] = keys
        session = requests.Session()
        session.trust_env = False
        session.verify = str(keys.trust_bundle)
        session.mount("https://", TlsAdapter(keys.tls))
        separator = "&" if urlsplit(endpoint).query else "?"
        to = f"{endpoint}{separator}oin={oin.value}"
        return _Peer(endpoint, to, oin, timeout, keys, session)


def _required(route: Route, key: str) -> str:
    value = route.settings.get(key)
    if not value:
        raise ConfigurationError(key, f"missing for route {route.recipient}")
    return value


def _load_keys(pki_dir: Path, passphrase_file: str, clock: Callable[[], datetime]) -> _Keys:
    layout = PkiLayout(pki_dir)
    if passphrase_file:
        try:
            passphrase = Path(passphrase_file).read_text(encoding="utf-8").rstrip("\r\n").encode()
        except OSError as exc:
            raise ConfigurationError("passphrase_file", f"cannot read: {exc.strerror}") from None
    else:
        passphrase = passphrase_from(pki_dir, os.environ)
    signer = WsSigner.from_files(
        layout.key_path(HUB_PARTY, "sign"), layout.cert_path(HUB_PARTY, "sign"), passphrase
    )
    context = ssl.create_default_context(cafile=str(layout.trust_bundle_path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(
            str(layout.cert_path(HUB_PARTY, "tls")),
            str(layout.key_path(HUB_PARTY, "tls")),
            password=passphrase,
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError("hub TLS key", f"cannot load ({type(exc).__name__})") from None
    return _Keys(
        signer=signer,
        tls=context,
        trust_bundle=layout.trust_bundle_path,
        hub_oin=required_oin(load_certificate(layout.cert_path(HUB_PARTY, "sign"))),
        verifier=WsVerifier(TrustStore.from_pem_file(layout.trust_bundle_path), clock),
    )


# --- one delivery --------------------------------------------------------------------------------


def _deliver(
    peer: _Peer,
    operations: dict[str, _Operation],
    message: Outgoing,
    clock: Callable[[], datetime],
) -> tuple[SendResult, bool]:
    """The result, and whether the connection failed (then the batch stops)."""
    message_id = message.message_id
    try:
        envelope, signature_value, operation = _request(peer, operations, message, clock)
    except InvalidRecord as exc:
        # Our own payload does not parse or has no operation: sending it again will not help.
        return SendResult(message_id, False, False, f"payload refused [{exc.rule}]"), False
    try:
        response = peer.session.post(
            peer.endpoint,
            data=envelope,
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": f'"{operation.soap_action}"',
            },
            timeout=peer.timeout,
            allow_redirects=False,
        )
    except requests.Timeout:
        return SendResult(message_id, False, True, "timeout"), True
    except requests.exceptions.SSLError:
        return SendResult(message_id, False, True, "TLS handshake failed"), True
    except requests.RequestException as exc:
        return SendResult(
            message_id, False, True, f"connection failed ({type(exc).__name__})"
        ), True
    return _outcome(peer, operation, message_id, signature_value, response), False


def _request(
    peer: _Peer,
    operations: dict[str, _Operation],
    message: Outgoing,
    clock: Callable[[], datetime],
) -> tuple[bytes, str, _Operation]:
    # The payload is our own outbox's, but it is bytes like any other: the one hardened parser.
    body = parse_untrusted(message.payload, source=f"message {message.message_id}")
    operation = operations.get(body.tag)
    if operation is None:
        raise InvalidRecord(
            "is not a document any service takes (dossier, signaalbestand)",
            field="payload",
            rule="SOAP-PAYLOAD",
        )
    envelope = build_envelope(
        body,
        to=peer.to,
        action=operation.soap_action,
        message_id=message.message_id,  # the same on every attempt: the receiver deduplicates
        from_=f"{ANONYMOUS}?oin={peer.keys.hub_oin.value}",
        reply_to=ANONYMOUS,
    )
    signature_value = peer.keys.signer.sign(envelope, now=clock())
    return canonical_bytes(envelope), signature_value, operation


def _outcome(
    peer: _Peer,
    operation: _Operation,
    message_id: str,
    signature_value: str,
    response: requests.Response,
) -> SendResult:
    status = response.status_code
    if status != 200:
        fault = _fault(response.content) if status == 500 else None
        if fault is not None:
            side, code = fault
            if side == "Client":
                return SendResult(message_id, False, False, f"soap:Client {code}".strip())
            return SendResult(message_id, False, True, f"soap:{side} {code}".strip())
        permanent = 400 <= status < 500 and status not in (408, 429)
        return SendResult(message_id, False, not permanent, f"HTTP {status}")
    try:
        verified = peer.keys.verifier.verify(
            response.content,
            expected_oin=peer.oin,
            require_confirmation=signature_value,
            expected_relates_to=message_id,
        )
    except WsSecurityRejected as exc:
        return SendResult(message_id, False, True, f"reply refused [{exc.rule}]")
    receipt = verified.body_child
    if (
        verified.action != operation.response_action
        or receipt.tag != operation.response_tag
        or validate(receipt, "receipt")
    ):
        return SendResult(message_id, False, True, "reply is not a valid receipt")
    if receipt.findtext(_R + "betreftberichtid") != message_id:
        return SendResult(message_id, False, True, "receipt answers another message")
    if receipt.findtext(_R + "resultaat") == "accepted":
        return SendResult(message_id, True, False, "accepted")
    codes = sorted({(c.text or "").strip() for c in receipt.findall(f"{_R}fout/{_R}code")})
    return SendResult(message_id, False, False, "rejected " + ",".join(codes))


def _fault(content: bytes) -> tuple[str, str] | None:
    """(`Client` or `Server`, Edukoppeling code) of a SOAP 1.1 fault; None if it is none."""
    try:
        root = parse_untrusted(content, source="SOAP fault")
    except InvalidRecord:
        return None
    fault = root.find(f"{_SOAP}Body/{_SOAP}Fault")
    if root.tag != _SOAP + "Envelope" or fault is None:
        return None
    # faultcode is a QName such as soap:Client or soap:Server.Busy (SOAP 1.1 section 4.4.1).
    side = (fault.findtext("faultcode") or "").strip().rpartition(":")[2].split(".")[0]
    if side not in ("Client", "Server"):
        return None
    # The faultstring starts with the Edukoppeling code; only a code is passed on, no text.
    first = (fault.findtext("faultstring") or "").strip()[:4]
    code = first if first.isdigit() and len(first) == 4 else ""
    if side == "Client" and code and code not in _CLIENT_FAULTS:
        code = "other"
    return side, code


__all__ = ["DEFAULT_TIMEOUT", "SoapDeliveryTransport"]
