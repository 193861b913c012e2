"""Reference SOAP SIS: operation `GeefLeerlingen` of `xsd/sis-service.wsdl` (docs/sis.md).

    with SoapSisServer(region_dir) as sis:
        settings = {"endpoint": sis.url, "username": sis.username, "password": sis.password}

SOAP 1.1, document/literal: `POST <url>` with a `leerlingenVraag` in the Body answers a
`leerlingenAntwoord` (one page of `leerlingen`, `vervolg` when there is more, `tot`). `GET
<url>?wsdl` serves the WSDL with this server's address in it, and the schema it imports at
`/sis-export.xsd`. Clients authenticate with HTTP Basic; a wrong one gets a plain 401, as a
front proxy would answer it, not a fault.

Requests are parsed with the hub's hardened parser and validated against `sis-export.xsd`; a
request the server refuses is a `soap:Client` fault. `fail_next(n)` answers the next `n`
requests with a `soap:Server` fault; `delay` slows every request down.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from wsgiref.types import StartResponse, WSGIEnvironment

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from connectors.reference import (
    DEFAULT_LIMIT,
    BadRequest,
    ReferenceServer,
    read_body,
)
from overstap.errors import InvalidRecord
from overstap.region.sis_shapes import NAMESPACE, leerlingen_element
from overstap.xml.safe import XmlLimits, parse_untrusted
from overstap.xml.schemas import xsd_dir

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_ENV = f"{{{SOAP_ENV}}}"
_NS = f"{{{NAMESPACE}}}"
_WSDL_NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap": "http://schemas.xmlsoap.org/wsdl/soap/",
}
SERVICE_PATH = "/sis"
_REQUEST_LIMITS = XmlLimits(max_bytes=64 * 1024, max_depth=16, max_elements=100)
"""A request is a handful of elements; anything bigger is refused before it is built."""


class SoapSisServer(ReferenceServer):
    """The SOAP reference SIS; `url` is the service endpoint (`http://127.0.0.1:<port>/sis`)."""

    def __init__(
        self,
        region_dir: Path,
        *,
        username: str = "overstap-hub",
        password: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(region_dir, clock=clock)
        self.username = username
        self.password = password or secrets.token_urlsafe(24)
        self._schema = _compile_schema()
        self._schema_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SERVICE_PATH}"

    def fail_next(self, n: int, faultstring: str = "service temporarily unavailable") -> None:
        """Answer the next `n` requests with a `soap:Server` fault."""
        self._queue_failures(n, faultstring)

    # --- WSGI ---------------------------------------------------------------------------------

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if (
            method == "GET"
            and path == SERVICE_PATH
            and environ.get("QUERY_STRING", "").lower() == "wsdl"
        ):
            return _send(start_response, 200, self._wsdl(), "text/xml")
        if method == "GET" and path == "/sis-export.xsd":
            return _send(
                start_response, 200, (xsd_dir() / "sis-export.xsd").read_bytes(), "text/xml"
            )
        if path != SERVICE_PATH:
            return _send(start_response, 404, b"not found", "text/plain")
        if method != "POST":
            return _send(start_response, 405, b"method not allowed", "text/plain")
        if not self._client_ok(environ.get("HTTP_AUTHORIZATION", "")):
            challenge = [("WWW-Authenticate", 'Basic realm="sis"')]
            return _send(start_response, 401, b"unauthorized", "text/plain", challenge)
        self._pause()
        injected = self._take_failure()
        if injected is not None:
            return _fault(start_response, "Server", str(injected))
        try:
            return _send(start_response, 200, self._answer(environ), "text/xml; charset=utf-8")
        except BadRequest as exc:
            return _fault(start_response, "Client", str(exc))

    def _client_ok(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        user_ok = hmac.compare_digest(username, self.username.encode())
        password_ok = hmac.compare_digest(password, self.password.encode())
        return bool(sep) and user_ok and password_ok

    def _answer(self, environ: WSGIEnvironment) -> bytes:
        vraag = self._request(read_body(environ, _REQUEST_LIMITS.max_bytes))
        location = vraag.findtext(_NS + "vestiging") or ""
        if not self.store.has_location(location):
            raise BadRequest("unknown vestiging")
        maximum = vraag.findtext(_NS + "maximum")
        page = self.store.page(
            location,
            vraag.findtext(_NS + "gewijzigdSinds"),
            vraag.findtext(_NS + "vervolg"),
            DEFAULT_LIMIT if maximum is None else int(maximum),
        )
        envelope = etree.Element(_ENV + "Envelope", nsmap={"soap": SOAP_ENV})
        body = etree.SubElement(envelope, _ENV + "Body")
        antwoord = etree.SubElement(body, _NS + "leerlingenAntwoord", nsmap={None: NAMESPACE})
        changed = {rec["leerlingid"]: gewijzigd for rec, gewijzigd in page.records}
        antwoord.append(leerlingen_element([rec for rec, _ in page.records], changed))
        if page.next_cursor is not None:
            etree.SubElement(antwoord, _NS + "vervolg").text = page.next_cursor
        etree.SubElement(antwoord, _NS + "tot").text = page.tot
        return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))

    def _request(self, data: bytes) -> etree._Element:
        """The `leerlingenVraag` of a request envelope, valid against the schema."""
        try:
            envelope = parse_untrusted(data, limits=_REQUEST_LIMITS, source="request")
        except InvalidRecord as exc:
            raise BadRequest(f"request refused: {exc.reason}") from None
        body = envelope.find(_ENV + "Body") if envelope.tag == _ENV + "Envelope" else None
        if body is None or len(body) != 1:
            raise BadRequest("expected a SOAP 1.1 Envelope with one Body element")
        vraag = body[0]
        if vraag.tag != _NS + "leerlingenVraag":
            raise BadRequest("unknown operation; expected leerlingenVraag")
        # lxml keeps one error log per schema object: requests in parallel threads take turns.
        with self._schema_lock:
            valid = self._schema.validate(vraag)
            line = None if valid else self._schema.error_log.last_error.line
        if not valid:
            # libxml2's message may quote the refused value: only where it was goes back.
            raise BadRequest(f"leerlingenVraag does not match the schema (line {line})")
        return vraag

    def _wsdl(self) -> bytes:
        tree = etree.fromstring((xsd_dir() / "sis-service.wsdl").read_bytes())
        for address in tree.iterfind(".//wsdl:service/wsdl:port/soap:address", _WSDL_NS):
            address.set("location", self.url)
        return bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))


def _compile_schema() -> etree.XMLSchema:
    # Our own file, but still read without network or entities: a schema is code.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(xsd_dir() / "sis-export.xsd"), parser))


def _fault(start_response: StartResponse, code: str, message: str) -> list[bytes]:
    envelope = etree.Element(_ENV + "Envelope", nsmap={"soap": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(envelope, _ENV + "Body"), _ENV + "Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = message
    data = bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))
    # SOAP 1.1 section 6.2: a fault travels with HTTP 500, whoever is at fault.
    return _send(start_response, 500, data, "text/xml; charset=utf-8")


def _send(
    start_response: StartResponse,
    status: int,
    data: bytes,
    content_type: str,
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", content_type), ("Content-Length", str(len(data))), *headers],
    )
    return [data]


__all__ = ["SERVICE_PATH", "SoapSisServer"]
