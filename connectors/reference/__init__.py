"""Reference SIS servers: a REST (`sis_rest`) and a SOAP (`sis_soap`) school administration system
that serve a synthetic region's students over loopback, for tests and demos.

They are small on purpose, but real: real HTTP on 127.0.0.1, real OAuth2 and HTTP Basic, real
paging with opaque cursors, so the connectors are tested against a peer and never against a mock
of our own code. Each runs in a thread of the calling process; fault injection (`fail_next`,
`delay`) and `touch` let a test drive the peer into the situations a pull must survive.

This module holds what both share: the student store (`students.jsonl` per school location,
with a per-record `gewijzigd` timestamp and keyset paging) and the threaded WSGI server plumbing.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any, Self
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
INITIAL_GEWIJZIGD = "2026-09-01T00:00:00Z"
"""Every record's `gewijzigd` until it is touched: a fixed moment keeps the servers deterministic."""


class BadRequest(ValueError):
    """The client sent something the server refuses (a 400 or a SOAP Client fault)."""


def utc_iso(moment: datetime) -> str:
    """`2026-10-01T12:00:00Z`: the one timestamp format both servers write."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_moment(text: str) -> datetime:
    """An ISO 8601 timestamp with a time zone; `BadRequest` otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest("timestamp is not ISO 8601") from None
    if moment.tzinfo is None:
        raise BadRequest("timestamp has no time zone")
    return moment


@dataclass(frozen=True, slots=True)
class Page:
    records: list[tuple[dict[str, Any], str]]  # (students.jsonl record, gewijzigd)
    next_cursor: str | None
    tot: str


@dataclass(frozen=True, slots=True)
class _Cursor:
    after: str  # last leerlingid served
    since: str | None
    tot: str

    def encode(self) -> str:
        raw = json.dumps([self.after, self.since, self.tot], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @classmethod
    def decode(cls, text: str) -> _Cursor:
        try:
            after, since, tot = json.loads(base64.urlsafe_b64decode(text.encode()))
        except (binascii.Error, ValueError, TypeError):
            raise BadRequest("invalid cursor") from None
        if not isinstance(after, str) or not isinstance(tot, str):
            raise BadRequest("invalid cursor")
        if since is not None and not isinstance(since, str):
            raise BadRequest("invalid cursor")
        return cls(after, since, tot)


class StudentStore:
    """The students of a region by school location, each with a `gewijzigd` timestamp.

    Paging is keyset paging on leerlingid: a cursor holds the last id served, the `since` filter
    and the pull's start time (`tot`), so a record touched while a pull is paging is neither
    skipped nor served twice, and every page of one pull reports the same `tot`.
    """

    def __init__(self, region_dir: Path, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._by_location: dict[str, dict[str, dict[str, Any]]] = {}
        self._gewijzigd: dict[tuple[str, str], datetime] = {}
        initial = parse_moment(INITIAL_GEWIJZIGD)
        with (Path(region_dir) / "students.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    rec = json.loads(line)
                    self._by_location.setdefault(rec["school"], {})[rec["leerlingid"]] = rec
                    self._gewijzigd[rec["school"], rec["leerlingid"]] = initial

    def has_location(self, location: str) -> bool:
        return location in self._by_location

    def touch(self, location: str, leerlingids: Iterable[str], at: datetime) -> None:
        """Mark students as changed at `at` (a test's way to make incremental pulls visible)."""
        with self._lock:
            for leerlingid in leerlingids:
                if leerlingid not in self._by_location.get(location, {}):
                    raise KeyError(f"no student {leerlingid} at {location}")
                self._gewijzigd[location, leerlingid] = at

    def page(self, location: str, since: str | None, cursor: str | None, limit: int) -> Page:
        """One page of `location`'s students changed at or after `since` (a cursor's own
        `since` wins: a pull keeps its filter from the first page to the last)."""
        if cursor is not None:
            state = _Cursor.decode(cursor)
        else:
            state = _Cursor("", since, utc_iso(self._clock()))
        since_moment = None if state.since is None else parse_moment(state.since)
        with self._lock:
            students = self._by_location[location]
            chosen: list[tuple[dict[str, Any], str]] = []
            more = False
            for leerlingid in sorted(k for k in students if k > state.after):
                changed = self._gewijzigd[location, leerlingid]
                if since_moment is not None and changed < since_moment:
                    continue
                if len(chosen) == limit:
                    more = True
                    break
                chosen.append((students[leerlingid], utc_iso(changed)))
        next_cursor = (
            _Cursor(chosen[-1][0]["leerlingid"], state.since, state.tot).encode() if more else None
        )
        return Page(chosen, next_cursor, state.tot)


class _ThreadingWsgiServer(ThreadingMixIn, WSGIServer):
    # Daemon threads: a handler sleeping in an injected delay must not hold up stop().
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # The default writes every request line to stderr; a query string may hold a cursor.
        return


class ServerThread:
    """A socketserver-style server in a daemon thread of this process: `start`/`stop` and use as
    a context manager. Subclasses build the server in `_make_server` (port 0: a free port)."""

    _server: Any = None
    _thread: threading.Thread | None = None

    def _make_server(self) -> Any:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = self._make_server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ReferenceServer(ServerThread):
    """A WSGI app served from a thread on 127.0.0.1 at a free port; a context manager.

    Subclasses implement `app`. `delay` (seconds) is slept before answering a data request;
    `fail_next` queues injected failures that the subclass renders in its protocol's way.
    """

    def __init__(self, region_dir: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.store = StudentStore(region_dir, clock or (lambda: datetime.now(UTC)))
        self.delay = 0.0
        self._failures: list[Any] = []
        self._failures_lock = threading.Lock()

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raise NotImplementedError

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not started")
        return int(self._server.server_address[1])

    def _make_server(self) -> Any:
        server = make_server(
            "127.0.0.1", 0, self.app, server_class=_ThreadingWsgiServer, handler_class=_QuietHandler
        )
        assert isinstance(server, _ThreadingWsgiServer)
        return server

    def touch(self, location: str, leerlingids: Iterable[str], at: datetime) -> None:
        """Mark students as changed at `at`; see `StudentStore.touch`."""
        self.store.touch(location, leerlingids, at)

    def reset(self) -> None:
        """No delay and no queued failures (between tests that share a server)."""
        self.delay = 0.0
        with self._failures_lock:
            self._failures.clear()

    def _queue_failures(self, n: int, failure: Any) -> None:
        with self._failures_lock:
            self._failures.extend([failure] * n)

    def _take_failure(self) -> Any:
        with self._failures_lock:
            return self._failures.pop(0) if self._failures else None

    def _pause(self) -> None:
        if self.delay > 0:
            time.sleep(self.delay)


def read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """The request body, refused when larger than `limit` bytes."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("invalid Content-Length") from None
    if length < 0 or length > limit:
        raise BadRequest("request body too large")
    body: bytes = environ["wsgi.input"].read(length)
    return body


__all__ = [
    "DEFAULT_LIMIT",
    "INITIAL_GEWIJZIGD",
    "MAX_LIMIT",
    "BadRequest",
    "Page",
    "ReferenceServer",
    "StudentStore",
    "parse_moment",
    "read_body",
    "utc_iso",
]
