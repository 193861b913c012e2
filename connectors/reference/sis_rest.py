"""Reference REST SIS: the JSON API of docs/sis.md with OAuth2 client credentials.

    with RestSisServer(region_dir) as sis:
        settings = {"base_url": sis.url, "client_id": sis.client_id,
                    "client_secret": sis.client_secret}

- `POST /oauth/token` (RFC 6749 section 4.4): HTTP Basic client id and secret, body
  `grant_type=client_credentials`; answers a bearer token valid for `token_lifetime` seconds.
- `GET /api/v1/scholen/{location}/leerlingen?limit=&cursor=&gewijzigd_sinds=`: one page,
  `{"leerlingen": [...], "volgende": cursor | null, "tot": ISO}`. `limit` defaults to 500 and is
  capped at 1000. A missing, unknown or expired token: 401 with
  `WWW-Authenticate: Bearer error="invalid_token"`.

Fault injection: `fail_next(n, status)` answers the next `n` data requests with `status`;
`delay` slows every data request down; `expire_tokens()` makes every issued token invalid.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

from connectors.reference import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    BadRequest,
    ReferenceServer,
    parse_moment,
    read_body,
)
from overstap.region.sis_shapes import api_record

_LEERLINGEN = re.compile(r"/api/v1/scholen/(?P<location>[0-9]{2}[A-Z]{2}[0-9]{2})/leerlingen")


class RestSisServer(ReferenceServer):
    """The REST reference SIS; `url` is the base URL (`http://127.0.0.1:<port>`)."""

    def __init__(
        self,
        region_dir: Path,
        *,
        client_id: str = "overstap-hub",
        client_secret: str | None = None,
        token_lifetime: int = 300,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(region_dir, clock=clock)
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.token_lifetime = token_lifetime
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}  # token -> time.monotonic() it expires
        self._tokens_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next `n` data requests with HTTP `status` (5xx, 429, ...)."""
        self._queue_failures(n, status)

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (tests the connector's refresh)."""
        with self._tokens_lock:
            self._tokens.clear()

    def reset(self) -> None:
        super().reset()
        self.expire_tokens()
        self.tokens_issued = 0

    # --- WSGI ---------------------------------------------------------------------------------

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        try:
            if path == "/oauth/token":
                if method != "POST":
                    return _json(start_response, 405, {"error": "method_not_allowed"})
                return self._token(environ, start_response)
            match = _LEERLINGEN.fullmatch(path)
            if match is None:
                return _json(start_response, 404, {"error": "not_found"})
            if method != "GET":
                return _json(start_response, 405, {"error": "method_not_allowed"})
            return self._leerlingen(environ, start_response, match["location"])
        except BadRequest as exc:
            return _json(start_response, 400, {"error": "invalid_request", "detail": str(exc)})

    def _token(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        form = parse_qs(read_body(environ, 4096).decode("latin-1"))
        if form.get("grant_type") != ["client_credentials"]:
            return _json(start_response, 400, {"error": "unsupported_grant_type"})
        if not self._client_ok(environ.get("HTTP_AUTHORIZATION", "")):
            return _json(
                start_response,
                401,
                {"error": "invalid_client"},
                [("WWW-Authenticate", 'Basic realm="oauth"')],
            )
        token = secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime
            self.tokens_issued += 1
        answer = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}
        return _json(start_response, 200, answer, [("Cache-Control", "no-store")])

    def _client_ok(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, sep, secret = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both compared in constant time, and both always compared: the answer's timing says
        # nothing about which half was wrong.
        id_ok = hmac.compare_digest(client_id, self.client_id.encode())
        secret_ok = hmac.compare_digest(secret, self.client_secret.encode())
        return bool(sep) and id_ok and secret_ok

    def _token_ok(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._tokens_lock:
            expires = self._tokens.get(token)
        return expires is not None and time.monotonic() < expires

    def _leerlingen(
        self, environ: WSGIEnvironment, start_response: StartResponse, location: str
    ) -> Iterable[bytes]:
        if not self._token_ok(environ.get("HTTP_AUTHORIZATION", "")):
            return _json(
                start_response,
                401,
                {"error": "invalid_token"},
                [("WWW-Authenticate", 'Bearer error="invalid_token"')],
            )
        self._pause()
        failure = self._take_failure()
        if failure is not None:
            return _json(start_response, failure, {"error": "injected_failure"})
        if not self.store.has_location(location):
            return _json(start_response, 404, {"error": "unknown_location"})
        query = parse_qs(environ.get("QUERY_STRING", ""))
        since = _single(query, "gewijzigd_sinds")
        if since is not None:
            parse_moment(since)  # refuse a bad value here rather than on a later page
        page = self.store.page(location, since, _single(query, "cursor"), _limit(query))
        body = {
            "leerlingen": [api_record(rec, changed) for rec, changed in page.records],
            "volgende": page.next_cursor,
            "tot": page.tot,
        }
        return _json(start_response, 200, body)


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise BadRequest(f"{name} given more than once")
    return values[0]


def _limit(query: dict[str, list[str]]) -> int:
    text = _single(query, "limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise BadRequest("limit must be a positive integer")
    return min(int(text), MAX_LIMIT)


def _json(
    start_response: StartResponse,
    status: int,
    body: Any,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(data))),
            *(headers or []),
        ],
    )
    return [data]


__all__ = ["RestSisServer"]
