"""`RestSisConnector`: pulls a school's students from a SIS's REST API (docs/sis.md, the JSON shape).

Settings (`SisSchool.settings`): `base_url`, `client_id`, `client_secret`, optional `page_size`
(default 500) and `timeout` (seconds per HTTP call, default 30). The client secret and the
bearer token never reach a log line, a repr or an error message.

Retrying is the caller's job (the pull task retries with backoff), so this connector only says
which failures are worth a retry: connection errors, timeouts, 429 and 5xx raise
`RetryableDeliveryError`; a 401 after one token refresh, a 403 and any other 4xx raise
`ConfigurationError`, naming the URL path (never the query: it holds a cursor and a timestamp,
and on a badly built URL it could hold anything).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from overstap.errors import ConfigurationError, RetryableDeliveryError
from overstap.ports import ExportDocument, SisSchool

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 500
DEFAULT_TIMEOUT = 30.0


class RestSisConnector:
    """The `SisConnector` for REST SIS APIs; holds no per-school state between pulls."""

    def fetch(self, school: SisSchool, since: str | None) -> Iterator[ExportDocument]:
        settings = _Settings.of(school)
        with requests.Session() as session:
            # A kept-alive connection the server has just closed fails on reuse: retry the
            # connection once for GETs (idempotent). Read errors and statuses are not retried.
            retry = Retry(total=1, connect=1, read=0, status=0, other=0, allowed_methods={"GET"})
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            yield from _Pull(session, settings, school.location).pages(since)

    def __repr__(self) -> str:
        return "RestSisConnector()"


@dataclass(frozen=True, slots=True)
class _Settings:
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    page_size: int = DEFAULT_PAGE_SIZE
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def of(cls, school: SisSchool) -> _Settings:
        s = school.settings
        for key in ("base_url", "client_id", "client_secret"):
            if not s.get(key):
                raise ConfigurationError(key, f"missing for school {school.location}")
        base_url = s["base_url"].rstrip("/")
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigurationError("base_url", "must be an http(s) URL")
        return cls(
            base_url,
            s["client_id"],
            s["client_secret"],
            max(1, int(positive_setting(school, "page_size", DEFAULT_PAGE_SIZE))),
            positive_setting(school, "timeout", DEFAULT_TIMEOUT),
        )


def positive_setting(school: SisSchool, key: str, default: float) -> float:
    """A positive number from `school.settings[key]`, or `default` when the key is not set."""
    text = school.settings.get(key)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(key, "must be a positive number") from None
    if not value > 0:  # also refuses nan
        raise ConfigurationError(key, "must be a positive number")
    return value


class _Pull:
    """One pull: a session reused for the token and every page, and the token it holds."""

    def __init__(self, session: requests.Session, settings: _Settings, location: str) -> None:
        self.session = session
        self.settings = settings
        self.location = location
        self.token: str | None = None

    def pages(self, since: str | None) -> Iterator[ExportDocument]:
        path = f"/api/v1/scholen/{quote(self.location, safe='')}/leerlingen"
        cursor: str | None = None
        used: set[str] = set()
        number = 0
        while True:
            number += 1
            params = {"limit": str(self.settings.page_size)}
            if cursor is not None:
                params["cursor"] = cursor
            elif since is not None:
                # The cursor carries the filter from the first page on.
                params["gewijzigd_sinds"] = since
            data = self._get(path, params)
            volgende, tot = _page_links(data, path)
            log.info("sis rest %s: page %d fetched", self.location, number)
            yield ExportDocument(
                name=f"page {number}",
                open=opener(data),
                version=cursor or "",
                changed_until=tot,
            )
            if volgende is None:
                return
            if volgende in used:
                # A server that points back would keep this loop going forever.
                raise RetryableDeliveryError(f"GET {path}: page {number} points back to a page")
            used.add(volgende)
            cursor = volgende

    def _get(self, path: str, params: dict[str, str]) -> bytes:
        if self.token is None:
            self.token = self._fetch_token()
        response = self._send("GET", path, params=params)
        if response.status_code == 401:
            # Tokens expire; one fresh token per 401, and a second 401 means the client is
            # not (or no longer) allowed in.
            self.token = self._fetch_token()
            response = self._send("GET", path, params=params)
        _check(response, path)
        return response.content

    def _fetch_token(self) -> str:
        path = "/oauth/token"
        response = self._call(
            "POST",
            path,
            data={"grant_type": "client_credentials"},
            auth=(self.settings.client_id, self.settings.client_secret),
        )
        _check(response, path)
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise RetryableDeliveryError(f"POST {path}: answer has no access_token") from None
        if not isinstance(token, str) or not token:
            raise RetryableDeliveryError(f"POST {path}: answer has no access_token")
        return token

    def _send(self, method: str, path: str, params: dict[str, str]) -> requests.Response:
        return self._call(
            method, path, params=params, headers={"Authorization": f"Bearer {self.token}"}
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(
                method,
                self.settings.base_url + path,
                timeout=self.settings.timeout,
                allow_redirects=False,  # a redirect would carry credentials to another place
                **kwargs,
            )
        except requests.Timeout:
            raise RetryableDeliveryError(
                f"{method} {path}: no answer within {self.settings.timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            # The exception text holds the full URL (query included): only its kind is passed on.
            raise RetryableDeliveryError(
                f"{method} {path}: {type(exc).__name__} (connection failed)"
            ) from None


def _check(response: requests.Response, path: str) -> None:
    status = response.status_code
    method = response.request.method if response.request is not None else "GET"
    if status < 300:
        return
    what = f"{method} {path}: HTTP {status}"
    if status == 429 or status >= 500:
        raise RetryableDeliveryError(what)
    if status in (401, 403):
        raise ConfigurationError("client_id/client_secret", f"{what}: credentials refused")
    raise ConfigurationError("base_url", what)


def _page_links(data: bytes, path: str) -> tuple[str | None, str | None]:
    """`volgende` and `tot` of a page; the page itself is the format parser's to read."""
    try:
        page = json.loads(data)
        volgende = page["volgende"]
        tot = page.get("tot")
    except (ValueError, KeyError, TypeError, AttributeError):
        # A cut-off answer is the usual cause; the next attempt will likely be whole.
        raise RetryableDeliveryError(f"GET {path}: answer is not a page of students") from None
    if volgende is not None and (not isinstance(volgende, str) or not volgende):
        raise RetryableDeliveryError(f"GET {path}: answer has an invalid 'volgende'")
    return volgende, tot if isinstance(tot, str) else None


def opener(data: bytes) -> Callable[[], BinaryIO]:
    """`ExportDocument.open` for bytes held in memory: a fresh stream on every call."""

    def open_page() -> BinaryIO:
        return io.BytesIO(data)

    return open_page


__all__ = ["RestSisConnector", "opener", "positive_setting"]
