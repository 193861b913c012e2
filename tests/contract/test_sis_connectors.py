"""The contract every `SisConnector` passes, run against real peers over loopback.

Each test gets `sis`: a `(connector, school, peer)` triple for one connector kind. The connector
is the real adapter, the school carries the settings that point it at the peer, and the peer is
a `Peer`: the test's remote control for the other side (the reference SIS servers of
`connectors/reference/`, started once per module in a thread of this process).

Kinds: `rest` and `soap` (the reference servers), `file` (a local folder), `sftp` (real OpenSSH
behind `tests/tcp_proxy.py`, which injects resets and slowness) and `fake` (the in-memory
`tests/fakes.py` that unit tests of the core use: it must keep the same promises). Adding a kind
is one fixture named `<kind>_sis` that returns such a triple, plus the kind's name in `KINDS`. Its `Peer` says
how to read the student numbers out of one of its documents, how to make a student look changed,
how to inject one transient failure and a slow answer, and how to spoil the credentials. A kind
without paging sets `page_size` to None (the paging test then only checks completeness); one
without change times sets `has_clock` False (`since` must then return everyone). A situation a
kind cannot produce at all is skipped with `pytest.skip` inside that `Peer` method, which keeps
the gap visible in the test report.

Tests of one kind's own protocol (OAuth2 token refresh, the WSDL, SOAP Client faults) follow the
contract, at the end of the module. The whole module runs in a few seconds: one region of 300
students, short timeouts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pytest
import requests
import zeep

from connectors.reference import INITIAL_GEWIJZIGD, parse_moment
from connectors.reference.sis_rest import RestSisServer
from connectors.reference.sis_soap import SoapSisServer
from connectors.sis_rest import RestSisConnector
from connectors.sis_soap import SoapSisConnector
from overstap.errors import ConfigurationError, RetryableDeliveryError
from overstap.ports import ExportDocument, SisConnector, SisSchool
from overstap.region import generate_region
from overstap.xml.safe import parse_untrusted

KINDS = ["rest", "soap", "file", "sftp", "fake"]
PAGE_SIZE = 40
TIMEOUT = 1.0  # seconds; the slow-server test waits this long, every other call takes ms
SIS_NS = "{urn:overstap:sis-export:1}"


class Peer(Protocol):
    """The test's remote control for the system behind a connector."""

    @property
    def page_size(self) -> int | None:
        """What the school's settings ask per page; None: the kind has no pages."""
        ...

    @property
    def has_clock(self) -> bool:
        """The SIS keeps change times: `since` filters and `changed_until` is its clock."""
        ...

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never show in a repr, an error message or a log line."""
        ...

    def ids(self, document: ExportDocument) -> list[str]:
        """The leerlingnummers in one document, in document order."""
        ...

    def touch(self, leerlingids: Iterable[str], at: datetime) -> None:
        """Make these students of the school look changed at `at`."""
        ...

    def fail_next(self) -> None:
        """The next request fails in the protocol's transient way (503, Server fault, ...)."""
        ...

    def slow_down(self, seconds: float) -> None:
        """Every following answer takes `seconds` longer (0: back to normal)."""
        ...

    def wrong_credentials(self, school: SisSchool) -> SisSchool:
        """The same school with credentials the peer refuses."""
        ...


Sis = tuple[SisConnector, SisSchool, Peer]


@dataclass(frozen=True)
class Region:
    path: Path
    by_location: dict[str, set[str]]
    bsns: frozenset[str]

    @property
    def location(self) -> str:
        """The school location the suite pulls: the one with the most students."""
        return max(sorted(self.by_location), key=lambda loc: len(self.by_location[loc]))


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Region:
    path = tmp_path_factory.mktemp("region")
    generate_region(path, students=300, seed=4)
    by_location: dict[str, set[str]] = {}
    bsns: set[str] = set()
    for line in (path / "students.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        by_location.setdefault(rec["school"], set()).add(rec["leerlingid"])
        if rec["bsn"]:
            bsns.add(rec["bsn"])
    return Region(path, by_location, frozenset(bsns))


@pytest.fixture(params=KINDS)
def sis(request: pytest.FixtureRequest) -> Sis:
    triple: Sis = request.getfixturevalue(f"{request.param}_sis")
    return triple


# --- REST ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rest_server(region: Region) -> Iterator[RestSisServer]:
    with RestSisServer(region.path) as server:
        yield server


@dataclass
class RestPeer:
    server: RestSisServer
    location: str
    page_size: int | None = PAGE_SIZE
    has_clock: bool = True

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.server.client_secret,)

    def ids(self, document: ExportDocument) -> list[str]:
        page = json.loads(document.open().read())
        return [record["leerlingnummer"] for record in page["leerlingen"]]

    def touch(self, leerlingids: Iterable[str], at: datetime) -> None:
        self.server.touch(self.location, leerlingids, at)

    def fail_next(self) -> None:
        self.server.fail_next(1, status=503)

    def slow_down(self, seconds: float) -> None:
        self.server.delay = seconds

    def wrong_credentials(self, school: SisSchool) -> SisSchool:
        return _with(school, client_secret="not-" + self.server.client_secret)


@pytest.fixture
def rest_sis(rest_server: RestSisServer, region: Region) -> Sis:
    rest_server.reset()
    school = SisSchool(
        location=region.location,
        mapping="rest-json",
        connector="rest",
        settings={
            "base_url": rest_server.url,
            "client_id": rest_server.client_id,
            "client_secret": rest_server.client_secret,
            "page_size": str(PAGE_SIZE),
            "timeout": str(TIMEOUT),
        },
    )
    return RestSisConnector(), school, RestPeer(rest_server, region.location)


# --- SOAP ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def soap_server(region: Region) -> Iterator[SoapSisServer]:
    with SoapSisServer(region.path) as server:
        yield server


@dataclass
class SoapPeer:
    server: SoapSisServer
    location: str
    page_size: int | None = PAGE_SIZE
    has_clock: bool = True

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.server.password,)

    def ids(self, document: ExportDocument) -> list[str]:
        root = parse_untrusted(document.open().read(), source=document.name)
        assert root.tag == SIS_NS + "leerlingen"
        return [str(e.text) for e in root.iterfind(f"{SIS_NS}leerling/{SIS_NS}leerlingnummer")]

    def touch(self, leerlingids: Iterable[str], at: datetime) -> None:
        self.server.touch(self.location, leerlingids, at)

    def fail_next(self) -> None:
        self.server.fail_next(1)

    def slow_down(self, seconds: float) -> None:
        self.server.delay = seconds

    def wrong_credentials(self, school: SisSchool) -> SisSchool:
        return _with(school, password="not-" + self.server.password)


@pytest.fixture
def soap_sis(soap_server: SoapSisServer, region: Region) -> Sis:
    soap_server.reset()
    school = SisSchool(
        location=region.location,
        mapping="xml-export",
        connector="soap",
        settings={
            "endpoint": soap_server.url,
            "username": soap_server.username,
            "password": soap_server.password,
            "page_size": str(PAGE_SIZE),
            "timeout": str(TIMEOUT),
        },
    )
    return SoapSisConnector(), school, SoapPeer(soap_server, region.location)


def _with(school: SisSchool, **settings: str) -> SisSchool:
    return replace(school, settings={**school.settings, **settings})


# --- the contract -------------------------------------------------------------------------------


def test_every_student_exactly_once_in_pages_within_the_limit(
    sis: Sis, region: Region, caplog: pytest.LogCaptureFixture
) -> None:
    connector, school, peer = sis
    caplog.set_level(logging.DEBUG, logger="connectors")

    documents = list(connector.fetch(school, None))

    pages = [peer.ids(d) for d in documents]
    seen = [leerlingid for page in pages for leerlingid in page]
    assert len(seen) == len(set(seen)), "a student was delivered twice"
    assert set(seen) == region.by_location[school.location]
    names = [d.name for d in documents]
    assert len(set(names)) == len(names)
    if peer.page_size is not None:
        expected_pages = -(-len(seen) // peer.page_size)
        assert [len(p) for p in pages] == [peer.page_size] * (expected_pages - 1) + [
            len(seen) - peer.page_size * (expected_pages - 1)
        ]
        assert names == [f"page {n}" for n in range(1, expected_pages + 1)]
        # Every page reports the same server clock: the watermark of the whole pull.
        assert len({d.changed_until for d in documents}) == 1
    # A document opens as often as needed, with the same bytes each time.
    assert documents[0].open().read() == documents[0].open().read()
    logged = caplog.text
    assert not any(s in logged for s in peer.secrets)
    assert not any(bsn in logged for bsn in region.bsns)


def test_since_returns_only_the_students_changed_since(sis: Sis, region: Region) -> None:
    connector, school, peer = sis
    everyone = sorted(region.by_location[school.location])
    changed = everyone[::97]  # a few students spread over the pages
    moment = parse_moment(INITIAL_GEWIJZIGD) + timedelta(days=30)
    peer.touch(changed, moment)

    documents = list(connector.fetch(school, (moment - timedelta(seconds=1)).isoformat()))

    got = sorted(i for d in documents for i in peer.ids(d))
    if not peer.has_clock:
        # The port allows a connector that cannot filter to return everything.
        assert got == everyone
        return
    assert got == changed
    later = list(connector.fetch(school, (moment + timedelta(seconds=1)).isoformat()))
    assert [i for d in later for i in peer.ids(d)] == []


def test_watermark_of_a_pull_is_the_servers_clock(sis: Sis) -> None:
    connector, school, peer = sis
    if not peer.has_clock:
        pytest.skip("this kind of SIS has no clock of its own")
    before = datetime.now(UTC).replace(microsecond=0)
    documents = list(connector.fetch(school, None))
    until = documents[-1].changed_until
    assert until is not None
    assert before <= parse_moment(until) <= datetime.now(UTC)


def test_transient_failure_is_retryable(sis: Sis) -> None:
    connector, school, peer = sis
    peer.fail_next()
    with pytest.raises(RetryableDeliveryError) as caught:
        list(connector.fetch(school, None))
    _assert_no_secrets(caught.value, peer, connector)
    # Nothing sticks: the next pull goes through.
    assert list(connector.fetch(school, None))


def test_wrong_credentials_are_a_configuration_error(sis: Sis) -> None:
    connector, school, peer = sis
    with pytest.raises(ConfigurationError) as caught:
        list(connector.fetch(peer.wrong_credentials(school), None))
    # The refused secret is "not-" + the real one, so this also covers echoing what was sent.
    _assert_no_secrets(caught.value, peer, connector)


def test_slow_peer_beyond_the_timeout_is_retryable(sis: Sis) -> None:
    connector, school, peer = sis
    peer.slow_down(TIMEOUT * 3)
    with pytest.raises(RetryableDeliveryError) as caught:
        list(connector.fetch(school, None))
    _assert_no_secrets(caught.value, peer, connector)


def test_secrets_are_not_in_the_repr(sis: Sis) -> None:
    connector, school, peer = sis
    documents = list(connector.fetch(school, None))
    shown = repr(connector) + "".join(repr(d) for d in documents)
    assert not any(s in shown for s in peer.secrets)


def _assert_no_secrets(error: BaseException, peer: Peer, connector: object) -> None:
    texts = [str(error), repr(error), repr(connector)]
    cause = error.__cause__ or error.__context__
    if cause is not None and not error.__suppress_context__:
        texts.append(str(cause))
    assert not any(secret in text for secret in peer.secrets for text in texts)


# --- REST only: OAuth2 and HTTP statuses --------------------------------------------------------


def test_rest_refreshes_an_expired_token_once(rest_sis: Sis, rest_server: RestSisServer) -> None:
    connector, school, _ = rest_sis
    pages = connector.fetch(school, None)
    first = next(pages)
    rest_server.expire_tokens()  # mid-pull, as when a token runs out between two pages
    rest = list(pages)
    assert first.name == "page 1" and rest
    assert rest_server.tokens_issued == 2


def test_rest_token_refused_after_refresh_is_a_configuration_error(region: Region) -> None:
    with RestSisServer(region.path, token_lifetime=0) as server:
        school = SisSchool(
            region.location,
            "rest-json",
            "rest",
            {
                "base_url": server.url,
                "client_id": server.client_id,
                "client_secret": server.client_secret,
                "timeout": str(TIMEOUT),
            },
        )
        with pytest.raises(ConfigurationError, match="HTTP 401"):
            list(RestSisConnector().fetch(school, None))
        assert server.tokens_issued == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, RetryableDeliveryError),
        (502, RetryableDeliveryError),
        (403, ConfigurationError),
        (404, ConfigurationError),
    ],
)
def test_rest_status_codes(
    rest_sis: Sis, rest_server: RestSisServer, status: int, error: type[Exception]
) -> None:
    connector, school, _ = rest_sis
    rest_server.fail_next(1, status=status)
    with pytest.raises(error) as caught:
        list(connector.fetch(school, "2026-01-01T00:00:00Z"))
    message = str(caught.value)
    assert f"/api/v1/scholen/{school.location}/leerlingen" in message
    assert "?" not in message and "gewijzigd_sinds" not in message


def test_rest_server_speaks_bearer(rest_server: RestSisServer, region: Region) -> None:
    url = f"{rest_server.url}/api/v1/scholen/{region.location}/leerlingen"
    answer = requests.get(url, timeout=5)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    token = requests.post(
        f"{rest_server.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(rest_server.client_id, rest_server.client_secret),
        timeout=5,
    ).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 300
    page = requests.get(
        url,
        params={"limit": "5000"},
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    ).json()
    # limit is capped at 1000: this school is smaller, so one page holds it all.
    assert page["volgende"] is None
    assert len(page["leerlingen"]) == len(region.by_location[region.location])


def test_rest_server_that_points_back_stops_the_pull() -> None:
    """A SIS whose next cursor leads to a page already read would be paged forever."""

    class Looping(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the token endpoint
            self._answer({"access_token": "t", "token_type": "Bearer", "expires_in": 300})

        def do_GET(self) -> None:
            self._answer({"leerlingen": [], "volgende": "same", "tot": "2026-10-01T00:00:00Z"})

        def _answer(self, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Looping)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        school = SisSchool(
            "12AB00",
            "rest-json",
            "rest",
            {
                "base_url": f"http://127.0.0.1:{server.server_address[1]}",
                "client_id": "c",
                "client_secret": "s",
                "timeout": str(TIMEOUT),
            },
        )
        with pytest.raises(RetryableDeliveryError, match="points back"):
            list(RestSisConnector().fetch(school, None))
    finally:
        server.shutdown()
        server.server_close()


# --- SOAP only: the WSDL and Client faults ------------------------------------------------------


def test_soap_server_serves_a_wsdl_zeep_can_use(soap_server: SoapSisServer, region: Region) -> None:
    session = requests.Session()
    session.auth = (soap_server.username, soap_server.password)
    client = zeep.Client(
        f"{soap_server.url}?wsdl", transport=zeep.Transport(session=session, timeout=5)
    )
    answer: Any = client.service.GeefLeerlingen(vestiging=region.location, maximum=3)
    assert len(answer.leerlingen.leerling) == 3
    assert answer.vervolg and answer.tot


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>',
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        b'<leerlingenVraag xmlns="urn:overstap:sis-export:1"><vestiging>x</vestiging>'
        b"</leerlingenVraag></s:Body></s:Envelope>",
    ],
    ids=["not-xml", "doctype", "invalid-vestiging"],
)
def test_soap_bad_request_is_a_client_fault(soap_server: SoapSisServer, body: bytes) -> None:
    answer = requests.post(
        soap_server.url,
        data=body,
        auth=(soap_server.username, soap_server.password),
        headers={"Content-Type": "text/xml"},
        timeout=5,
    )
    assert answer.status_code == 500
    fault = parse_untrusted(answer.content)
    assert fault.findtext(".//faultcode") == "soap:Client"


def test_soap_unknown_location_is_a_configuration_error(soap_sis: Sis) -> None:
    connector, school, _ = soap_sis
    with pytest.raises(ConfigurationError, match="Client fault"):
        list(connector.fetch(replace(school, location="99ZZ00"), None))


# --- file exports: a local folder, an OpenSSH SFTP drop (through a fault-injecting proxy) -------


def _csv_ids(region: Region, document: ExportDocument) -> list[str]:
    """Leerlingnummers of a CSV export, read the way the hub reads it (the school's mapping)."""
    from mappings.sis_formats import records
    from mappings.sis_mapping import load_mapping
    from overstap.region.model import load_region

    school = next(
        s for s in load_region(region.path).vo_schools if str(s.location) == region.location
    )
    mapping = load_mapping(school.sis)
    column = mapping.rules["leerlingid"].sources[0]
    return [r.fields[column] for r in records(document, mapping.format)]


def _export_folder(region: Region, root: Path) -> Path:
    folder = root / region.location
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leerlingen.csv").write_bytes(
        (region.path / "sis" / region.location / "leerlingen.csv").read_bytes()
    )
    return folder


@dataclass
class FilePeer:
    """A folder has no pages, no clock, no credentials and cannot fail transiently."""

    region: Region
    page_size: int | None = None
    has_clock: bool = False
    secrets: tuple[str, ...] = ()

    def ids(self, document: ExportDocument) -> list[str]:
        return _csv_ids(self.region, document)

    def touch(self, leerlingids: Iterable[str], at: datetime) -> None:
        """A file export is rewritten whole; 'changed' students are just there."""

    def fail_next(self) -> None:
        pytest.skip("a local folder has no transient failures")

    def slow_down(self, seconds: float) -> None:
        pytest.skip("a local folder has no network to be slow")

    def wrong_credentials(self, school: SisSchool) -> SisSchool:
        pytest.skip("a local folder has no credentials")


@pytest.fixture
def file_sis(region: Region, tmp_path: Path) -> Sis:
    from connectors.sis_file import FileSisConnector

    _export_folder(region, tmp_path)
    school = SisSchool(
        region.location, "magister", "file", {"folder": str(tmp_path / "{location}")}
    )
    return FileSisConnector(), school, FilePeer(region)


@pytest.fixture(scope="module")
def sftp_peer_server(sshd_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sshd import start_sshd
    from tcp_proxy import TcpProxy

    work = tmp_path_factory.mktemp("sftp")
    server = start_sshd(sshd_bin, work / "etc", work / "root")
    with TcpProxy(server.port) as proxy:
        yield server, proxy
    server.stop()


@dataclass
class SftpPeer:
    region: Region
    proxy: Any
    key_path: Path
    stranger_key: Path
    page_size: int | None = None
    has_clock: bool = False

    @property
    def secrets(self) -> tuple[str, ...]:
        # The private key's text: it must never be echoed.
        body = self.key_path.read_text().splitlines()[1:-1]
        return tuple(line for line in body if len(line) > 20)

    def ids(self, document: ExportDocument) -> list[str]:
        return _csv_ids(self.region, document)

    def touch(self, leerlingids: Iterable[str], at: datetime) -> None:
        """The export is rewritten whole; no change times to set."""

    def fail_next(self) -> None:
        self.proxy.fail_next()

    def slow_down(self, seconds: float) -> None:
        self.proxy.slow_down(seconds)

    def wrong_credentials(self, school: SisSchool) -> SisSchool:
        return _with(school, key_path=str(self.stranger_key))


@pytest.fixture
def sftp_sis(region: Region, sftp_peer_server: Any, tmp_path: Path) -> Sis:
    import subprocess

    from connectors.sis_file import SftpSisConnector

    server, proxy = sftp_peer_server
    proxy.reset()
    _export_folder(region, server.root / "drop")
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    school = SisSchool(
        region.location,
        "magister",
        "sftp",
        {
            "host": "127.0.0.1",
            "port": str(proxy.port),
            "username": server.user,
            "key_path": str(server.client_key_path),
            "host_key": server.host_key_line,
            "timeout": str(TIMEOUT),
            "folder": "drop/{location}",
        },
    )
    return SftpSisConnector(), school, SftpPeer(region, proxy, server.client_key_path, stranger)


# --- the in-memory fake that unit tests of the core use ----------------------------------------


@pytest.fixture
def fake_sis(region: Region) -> Sis:
    from fakes import FakeSisConnector

    data = (region.path / "sis" / region.location / "leerlingen.csv").read_bytes()
    fake = FakeSisConnector({region.location: data}, token="fake-secret-token-1234")
    school = SisSchool(region.location, "magister", "fake", {"token": "fake-secret-token-1234"})
    return fake, school, FakePeer(region, fake)


@dataclass
class FakePeer:
    region: Region
    fake: Any
    page_size: int | None = None
    has_clock: bool = False
    secrets: tuple[str, ...] = ("fake-secret-token-1234",)

    def ids(self, document: ExportDocument) -> list[str]:
        return _csv_ids(self.region, document)

    def touch(self, leerlingids: Iterable[str], at: datetime) -> None:
        """Whole exports, like files."""

    def fail_next(self) -> None:
        self.fake.fail_next()

    def slow_down(self, seconds: float) -> None:
        self.fake.slow_down(seconds, TIMEOUT)

    def wrong_credentials(self, school: SisSchool) -> SisSchool:
        return _with(school, token="not-fake-secret-token-1234")
