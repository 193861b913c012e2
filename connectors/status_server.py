"""The hub's status intake over HTTPS: `MeldStatus` (`xsd/status-service.wsdl`) at `/status`.

    with StatusIntakeServer(ctx) as server:  # hub keys from ctx.settings.pki_dir
        print(server.url)  # https://127.0.0.1:<port>/status

Mutual TLS 1.2+: the hub's "tls" certificate serves, a client certificate is required and must
chain to the PKI's trust bundle (a client without one fails the handshake). Everything after
TLS is `overstap.services.status_intake.handle_status_request`; this module adds only what
needs the socket: the OIN of the client certificate, the SOAPAction header, the size limit.
Keys are loaded once, when the server is made, not per request.

One request per connection (wsgiref's HTTP/1.0 handler): mbo institutions send a status
message now and then, not a stream, so keep-alive is not worth the handler of its own.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from wsgiref.types import StartResponse, WSGIEnvironment

from cryptography import x509

from connectors.reference import BadRequest, ServerThread, read_body
from connectors.tls_wsgi import PEER_CERTIFICATE, TlsRequestHandler, TlsWsgiServer, send_response
from overstap.bootstrap import HubContext
from overstap.crypto.trust import TrustStore, oin_of
from overstap.errors import ConfigurationError
from overstap.pki import PkiLayout, passphrase_from
from overstap.services.status_intake import (
    SERVICE_PATH,
    SoapFault,
    fault_bytes,
    handle_status_request,
)
from overstap.xml.wssec import WsSigner, WsVerifier

__all__ = ["SERVICE_PATH", "StatusIntakeServer"]

HUB_PARTY: Final = "hub"
MAX_REQUEST_BYTES: Final = 20 * 1024 * 1024  # the hardened parser's own default limit
SOCKET_TIMEOUT: Final = 30.0  # a client that stalls mid-request does not hold a thread forever
_PEER: Final = PEER_CERTIFICATE

log = logging.getLogger(__name__)


class _Handler(TlsRequestHandler):
    timeout = SOCKET_TIMEOUT


class StatusIntakeServer(ServerThread):
    """The hub's MeldStatus service on `https://<host>:<port>/status` (port 0: a free port).

    `pki_dir` defaults to the context's; `passphrase` to `passphrase_from(pki_dir, environ)`.
    """

    def __init__(
        self,
        ctx: HubContext,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pki_dir: Path | None = None,
        passphrase: bytes | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        root = pki_dir if pki_dir is not None else ctx.settings.pki_dir
        secret = passphrase if passphrase is not None else passphrase_from(root, os.environ)
        layout = PkiLayout(root)
        self._ctx = ctx
        self._host = host
        self._port = port
        self._clock = clock
        self._signer = WsSigner.from_files(
            layout.key_path(HUB_PARTY, "sign"), layout.cert_path(HUB_PARTY, "sign"), secret
        )
        self._verifier = WsVerifier(TrustStore.from_pem_file(layout.trust_bundle_path), clock)
        self._tls = _server_context(layout, secret)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server is not started")
        host, port = self._server.server_address[:2]
        return f"https://{host}:{port}{SERVICE_PATH}"

    def _make_server(self) -> TlsWsgiServer:
        server = TlsWsgiServer((self._host, self._port), _Handler)
        server.tls = self._tls
        server.set_app(self.app)
        return server

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != SERVICE_PATH:
            return send_response(start_response, 404, b"not found", "text/plain")
        if environ["REQUEST_METHOD"] != "POST":
            return send_response(start_response, 405, b"method not allowed", "text/plain")
        try:
            data = read_body(environ, MAX_REQUEST_BYTES)
        except BadRequest:
            return send_response(start_response, 413, b"request too large", "text/plain")
        try:
            client_oin = _client_oin(environ.get(_PEER))
            status, answer = handle_status_request(
                self._ctx,
                data,
                tls_client_oin=client_oin,
                soap_action=str(environ.get("HTTP_SOAPACTION", "")),
                verifier=self._verifier,
                signer=self._signer,
                now=self._clock(),
            )
        except SoapFault as fault:
            status, answer = 500, fault_bytes(fault)
        except Exception as exc:  # the boundary: whatever broke, the sender gets a Server fault
            # The type only: a message could quote the request.
            log.error("status intake failed: %s", type(exc).__name__)
            status, answer = (
                500,
                fault_bytes(SoapFault("Server", "0051", "Service niet beschikbaar")),
            )
        return send_response(start_response, status, answer, "text/xml; charset=utf-8")


def _client_oin(der: object) -> str:
    # CERT_REQUIRED means the handshake proved a certificate of our CA; which party holds it is
    # the service's question, and a certificate without an OIN names no party at all.
    if not isinstance(der, bytes):
        raise SoapFault("Client", "0002", "no client certificate")
    oin = oin_of(x509.load_der_x509_certificate(der))
    if oin is None:
        raise SoapFault("Client", "0002", "the client certificate carries no OIN")
    return oin.value


def _server_context(layout: PkiLayout, passphrase: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cafile=str(layout.trust_bundle_path))
        context.load_cert_chain(
            str(layout.cert_path(HUB_PARTY, "tls")),
            str(layout.key_path(HUB_PARTY, "tls")),
            password=passphrase,
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            "hub TLS key", f"cannot load from {layout.party_dir(HUB_PARTY)} ({exc})"
        ) from None
    return context
