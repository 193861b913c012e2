"""HTTPS with mutual TLS for our WSGI services (the hub's status intake, the reference mbo).

The handshake runs in each connection's own thread (a slow or failing client never stalls the
accept loop), the client's certificate reaches the WSGI app in the environ, and nothing is
logged per request (stderr would fill with a line per delivery, and a line may name a path).
"""

from __future__ import annotations

import socket
import ssl
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse

PEER_CERTIFICATE: Final = "overstap.peer_certificate"  # DER bytes of the client certificate


class TlsRequestHandler(WSGIRequestHandler):
    timeout = 30.0  # a client that stalls mid-request does not hold a thread

    def setup(self) -> None:
        super().setup()
        connection: Any = self.connection
        connection.do_handshake()
        self._peer: bytes | None = connection.getpeercert(binary_form=True)

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ[PEER_CERTIFICATE] = self._peer
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        return


class TlsWsgiServer(ThreadingMixIn, WSGIServer):
    # Daemon threads: a handler sleeping in an injected delay must not hold up stop().
    daemon_threads = True
    tls: ssl.SSLContext

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        # wsgiref writes the headers and the body separately: without NODELAY the body waits
        # for the client's delayed ACK (40 ms per request on Linux).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A refused handshake or a client that went away: expected, not worth a traceback.
        return


def send_response(
    start_response: StartResponse, status: int, data: bytes, content_type: str
) -> list[bytes]:
    """A whole WSGI answer: status line, type and length, the bytes."""
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", content_type), ("Content-Length", str(len(data)))],
    )
    return [data]
