"""`SoapSisConnector`: pulls a school's students with `GeefLeerlingen` (xsd/sis-service.wsdl).

Settings (`SisSchool.settings`): `endpoint` (the service URL), `username`, `password` (HTTP
Basic), optional `page_size` (`maximum`, default 500) and `timeout` (seconds per call, default
30). The password never reaches a log line, a repr or an error message.

The zeep client is built from our own copy of the WSDL (`xsd/sis-service.wsdl`, found like every
schema through `overstap.xml.schemas.xsd_dir()`) with the endpoint overridden: a pull does not
depend on a schema the SIS serves, and zeep parses with its hardened settings. zeep builds the
request and reads the answer (faults included); the `leerlingen` element of each answer is then
taken from the answer's bytes with the hub's own hardened parser and serialised again as the
page's `ExportDocument`, which the `xml-export` mapping reads like a file export.

Retrying is the caller's job. `soap:Server` faults, 5xx without a fault, connection errors and
timeouts raise `RetryableDeliveryError`; `soap:Client` faults, 401/403 and other 4xx raise
`ConfigurationError`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
import zeep
import zeep.exceptions
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from connectors.sis_rest import opener, positive_setting
from overstap.errors import ConfigurationError, InvalidRecord, RetryableDeliveryError
from overstap.ports import ExportDocument, SisSchool
from overstap.xml.safe import parse_untrusted
from overstap.xml.schemas import xsd_dir

log = logging.getLogger(__name__)

SIS_NS = "urn:overstap:sis-export:1"
_BINDING = "{urn:overstap:sis-service:1}SisExportSoap11Binding"
_OPERATION = "GeefLeerlingen"
_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DEFAULT_PAGE_SIZE = 500
DEFAULT_TIMEOUT = 30.0


def _zeep_settings() -> zeep.Settings:
    return zeep.Settings(
        strict=True,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )


class SoapSisConnector:
    """The `SisConnector` for SOAP SIS services; holds no per-school state between pulls."""

    def fetch(self, school: SisSchool, since: str | None) -> Iterator[ExportDocument]:
        endpoint, username, password = _required(school)
        page_size = max(1, int(positive_setting(school, "page_size", DEFAULT_PAGE_SIZE)))
        timeout = positive_setting(school, "timeout", DEFAULT_TIMEOUT)
        with requests.Session() as session:
            session.auth = (username, password)
            yield from _pages(
                _client(session, timeout), endpoint, school.location, since, page_size, timeout
            )

    def __repr__(self) -> str:
        return "SoapSisConnector()"


def _client(session: requests.Session, timeout: float) -> Any:
    # zeep has no type hints; everything of it stays behind Any from here on.
    zeep_any: Any = zeep
    transport = zeep_any.Transport(session=session, timeout=timeout, operation_timeout=timeout)
    wsdl = str(xsd_dir() / "sis-service.wsdl")
    return zeep_any.Client(wsdl, transport=transport, settings=_zeep_settings())


def _required(school: SisSchool) -> tuple[str, str, str]:
    values = []
    for key in ("endpoint", "username", "password"):
        value = school.settings.get(key)
        if not value:
            raise ConfigurationError(key, f"missing for school {school.location}")
        values.append(value)
    if urlsplit(values[0]).scheme not in ("http", "https"):
        raise ConfigurationError("endpoint", "must be an http(s) URL")
    return values[0], values[1], values[2]


def _pages(
    client: Any, endpoint: str, location: str, since: str | None, page_size: int, timeout: float
) -> Iterator[ExportDocument]:
    service = client.create_service(_BINDING, endpoint)
    vervolg: str | None = None
    used: set[str] = set()
    number = 0
    while True:
        number += 1
        vraag: dict[str, Any] = {"vestiging": location, "maximum": page_size}
        if vervolg is not None:
            vraag["vervolg"] = vervolg
        elif since is not None:
            # The cursor carries the filter from the first page on.
            vraag["gewijzigdSinds"] = since
        what = f"{_OPERATION} {location} page {number}"
        response = _call(client, service, vraag, what, timeout)
        result = _reply(client, service, response, what)
        data = _leerlingen_bytes(response.content, what)
        log.info("sis soap %s: page %d fetched", location, number)
        yield ExportDocument(
            name=f"page {number}",
            open=opener(data),
            version=vervolg or "",
            changed_until=_iso(result.tot),
        )
        if not result.vervolg:
            return
        if str(result.vervolg) in used:
            # A server that points back would keep this loop going forever.
            raise RetryableDeliveryError(f"{what}: points back to an earlier page")
        vervolg = str(result.vervolg)
        used.add(vervolg)


def _call(
    client: Any, service: Any, vraag: dict[str, Any], what: str, timeout: float
) -> requests.Response:
    # raw_response: zeep sends the request and hands back the HTTP response untouched, so the
    # answer's own bytes are still there for the ExportDocument; _reply lets zeep read it.
    try:
        with client.settings(raw_response=True):
            response: requests.Response = getattr(service, _OPERATION)(**vraag)
    except requests.Timeout:
        raise RetryableDeliveryError(f"{what}: no answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise RetryableDeliveryError(f"{what}: {type(exc).__name__} (connection failed)") from None
    except zeep.exceptions.ValidationError as exc:
        # Our own request does not fit the WSDL: a setting (vestiging, page_size) is wrong.
        raise ConfigurationError("location/page_size", f"{what}: request refused by WSDL") from exc
    return response


def _reply(client: Any, service: Any, response: requests.Response, what: str) -> Any:
    status = response.status_code
    if status in (401, 403):
        raise ConfigurationError("username/password", f"{what}: HTTP {status}: credentials refused")
    operation = service._binding.get(_OPERATION)
    try:
        result = service._binding.process_reply(client, operation, response)
    except zeep.exceptions.Fault as fault:
        # faultcode is a QName such as soap:Server or soap:Client.Authentication (SOAP 1.1 4.4.1).
        code = str(fault.code or "").rpartition(":")[2].split(".")[0]
        if code == "Client":
            raise ConfigurationError(
                "location/endpoint", f"{what}: SOAP Client fault (the service refused the request)"
            ) from None
        raise RetryableDeliveryError(f"{what}: SOAP {code or 'unknown'} fault") from None
    except zeep.exceptions.Error as exc:
        # zeep's messages quote the answer's content: only the kind and status are passed on.
        if status == 429 or status >= 500:
            raise RetryableDeliveryError(f"{what}: HTTP {status}") from None
        if 400 <= status < 500:
            raise ConfigurationError("endpoint", f"{what}: HTTP {status}") from None
        raise RetryableDeliveryError(f"{what}: unreadable answer ({type(exc).__name__})") from None
    if status != 200:
        raise RetryableDeliveryError(f"{what}: HTTP {status}")
    return result


def _leerlingen_bytes(content: bytes, what: str) -> bytes:
    try:
        envelope = parse_untrusted(content, source=what)
    except InvalidRecord as exc:
        raise RetryableDeliveryError(f"{what}: answer refused: {exc.reason}") from None
    found = envelope.find(
        f"{{{_SOAP_ENV}}}Body/{{{SIS_NS}}}leerlingenAntwoord/{{{SIS_NS}}}leerlingen"
    )
    if found is None:
        raise RetryableDeliveryError(f"{what}: answer has no leerlingen")
    # Detached from the envelope, the element would still declare the envelope's prefix.
    leerlingen = copy.deepcopy(found)
    etree.cleanup_namespaces(leerlingen)
    return bytes(etree.tostring(leerlingen, xml_declaration=True, encoding="UTF-8"))


def _iso(value: Any) -> str | None:
    # zeep reads xs:dateTime into an aware datetime; the watermark is the ISO text.
    if value is None:
        return None
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return str(text).replace("+00:00", "Z")


__all__ = ["SoapSisConnector"]
