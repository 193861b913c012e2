"""Edukoppeling WS-Security (Digikoppeling WUS 2W-be-S): signing SOAP envelopes and strict verification.

Pure: lxml, python-xmlsec and cryptography, no network and no zeep (a zeep plugin wraps this).

Signing (`WsSigner.sign`) adds one `wsse:Security` header (mustUnderstand="1") holding a
`wsu:Timestamp` (Created/Expires in UTC), a `wsse:BinarySecurityToken` (the X.509v3 certificate,
base64 DER), for a response a `wsse11:SignatureConfirmation` echoing the request's SignatureValue,
and one `ds:Signature` with a separate Reference (URI="#id") to the Body, the Timestamp, every
WS-Addressing header and the SignatureConfirmation: exclusive c14n, SHA-256, RSA-SHA256
(DOMAIN.md "Transport standards", SECURITY.md "Signatures"). KeyInfo is a SecurityTokenReference
to the token. The signature is made by python-xmlsec (ADR 5: the id-reference shape is not the
template shape of `overstap.xml.dsig`); the key is loaded into xmlsec once per signer.

Verification (`WsVerifier.verify`) does not let the signature describe itself (ADR 4, ADR 7).
Before xmlsec runs, the envelope must have the Edukoppeling shape: a SOAP 1.1 Envelope with one
Header and one Body holding one element; the Header holds WS-Addressing headers (each at most
once) and exactly one wsse:Security, nothing else (fault 0010); exactly one ds:Signature in the
Header, a child of that Security header (a signature inside the Body is the payload's own, e.g.
a signed dossier's, for `overstap.xml.dsig` to check on `body_child`). The parts that must be signed are found by
*position* (Envelope/Body, Security/Timestamp, Header/wsa:*, Security/SignatureConfirmation),
never by id; every Id in the document is unique; each Reference is a same-document "#id" that
resolves to one of those parts, and every part is referenced exactly once. So a signed Body moved
elsewhere with a forged Body in its place fails: the reference leads away from the Body that
would be read. Only exclusive c14n, SHA-256+ digests and RSA-SHA256+ are accepted; the key comes
only from the BinarySecurityToken's certificate, validated by our `TrustStore` (chain, validity,
signing usage, expected OIN), never from a KeyValue. xmlsec then verifies SignedInfo and every
digest with that certificate's key and its transform lists restricted to the same algorithms;
and, so that xmlsec's own id lookup cannot be steered elsewhere, every digest is also
recomputed here over the element at its expected position. Only after that are the Timestamp,
SignatureConfirmation and RelatesTo values read and checked.

Errors are `WsSecurityRejected` (an `InvalidRecord`) with a rule id and the Edukoppeling technical
fault code (`fault_code`) for the SOAP Client fault; messages never quote Body content.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.crypto.trust import TrustedParty, TrustStore, UntrustedCertificate, Usage
from overstap.domain.identifiers import Oin
from overstap.errors import ConfigurationError, InvalidRecord
from overstap.xml.dsig import (
    DIGEST_METHODS,
    DSIG_NS,
    EXC_C14N,
    SIGNATURE_METHODS,
    restricted_context,
)
from overstap.xml.safe import RULE_ENCODING, UnsafeXml, parse_untrusted

__all__ = [
    "DEFAULT_SKEW",
    "DEFAULT_TTL",
    "SOAP_NS",
    "WSA_NS",
    "WSSE11_NS",
    "WSSE_NS",
    "WSU_NS",
    "VerifiedMessage",
    "WsSecurityRejected",
    "WsSigner",
    "WsVerifier",
    "build_envelope",
]

SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA_NS: Final = "http://www.w3.org/2005/08/addressing"
WSSE_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE11_NS: Final = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
EC_NS: Final = EXC_C14N  # namespace of ec:InclusiveNamespaces
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"
X509V3: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
)
BASE64_BINARY: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

DEFAULT_TTL: Final = timedelta(minutes=5)
DEFAULT_SKEW: Final = timedelta(minutes=5)

_SOAP = f"{{{SOAP_NS}}}"
_WSA = f"{{{WSA_NS}}}"
_WSSE = f"{{{WSSE_NS}}}"
_WSU = f"{{{WSU_NS}}}"
_WSSE11 = f"{{{WSSE11_NS}}}"
_DS = f"{{{DSIG_NS}}}"
_WSU_ID = _WSU + "Id"

# Edukoppeling: WS-Addressing 1.0 headers only (fault 0010 for anything else).
_WSA_HEADERS: Final = ("To", "From", "ReplyTo", "FaultTo", "Action", "MessageID", "RelatesTo")
# Edukoppeling technical fault codes for a missing WS-Addressing header.
_MISSING_FAULT: Final = {"To": "0005", "Action": "0006", "MessageID": "0007", "RelatesTo": "0008"}

FAULT_INVALID_ENVELOPE: Final = "0001"
FAULT_NOT_AUTHORISED: Final = "0002"
FAULT_NOT_UTF8: Final = "0009"
FAULT_NON_WSA_HEADER: Final = "0010"
FAULT_WRONG_HEADER_VALUE: Final = "0011"

_HASHES: Final = {
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
assert frozenset(_HASHES) == DIGEST_METHODS  # one list of acceptable digests, shared with dsig

_ID_REFERENCE: Final = re.compile(r"#[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
_ID_XPATH: Final = (
    f"//@*[local-name()='Id'] | //@*[local-name()='id' and namespace-uri()='{XML_NS}']"
)


class WsSecurityRejected(InvalidRecord):
    """A SOAP message whose WS-Security we do not accept.

    `rule` says which check failed; `fault_code` is the Edukoppeling technical code for the SOAP
    Client fault ("0002" not authorised, "0005"-"0008" missing WS-Addressing header, "0010"
    non-WS-Addressing header, "0011" wrong header value, "0001" invalid envelope, "0009" not UTF-8).
    """

    def __init__(
        self,
        message: str,
        *,
        field: str = "SOAP envelope",
        rule: str,
        fault_code: str = FAULT_NOT_AUTHORISED,
        record: str | None = None,
    ) -> None:
        super().__init__(message, field=field, rule=rule, record=record)
        self.fault_code = fault_code

    def for_record(self, record: str) -> WsSecurityRejected:
        return type(self)(
            self.reason, field=self.field, rule=self.rule, fault_code=self.fault_code, record=record
        )


def _reject(message: str, rule: str, fault: str = FAULT_NOT_AUTHORISED) -> WsSecurityRejected:
    return WsSecurityRejected(message, rule=rule, fault_code=fault)


def _new_id(kind: str) -> str:
    """A fresh wsu:Id: random, so it carries no personal data and cannot collide."""
    return f"{kind}-{uuid.uuid4().hex}"


def _utc_text(moment: datetime) -> str:
    """xsd:dateTime in UTC with millisecond precision and a Z (Edukoppeling: UTC Created)."""
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- building ------------------------------------------------------------------------------------


def _endpoint_reference(parent: Any, name: str, address: str) -> None:
    epr = etree.SubElement(parent, _WSA + name)
    etree.SubElement(epr, _WSA + "Address").text = address


def build_envelope(
    body: etree._Element,
    *,
    to: str,
    action: str,
    message_id: str,
    from_: str | None = None,
    reply_to: str | None = None,
    relates_to: str | None = None,
) -> etree._Element:
    """A SOAP 1.1 envelope with the WS-Addressing headers given and `body` as its one Body child.

    `body` is moved into the envelope (not copied). To and From are URIs that already carry the
    OIN as `?oin=` (the caller's job). Nothing is signed yet: see `WsSigner.sign`.
    """
    for name, value in (("to", to), ("action", action), ("message_id", message_id)):
        if not value or not value.strip():
            raise ValueError(f"{name} is required (Edukoppeling WS-Addressing)")
    if not isinstance(body.tag, str):
        raise ValueError("the Body child must be an element")
    # wsu and wsse are declared once on the Envelope, so the ids and the Security header added by
    # signing need no declarations of their own on every header.
    envelope = etree.Element(
        _SOAP + "Envelope", nsmap={"soap": SOAP_NS, "wsa": WSA_NS, "wsse": WSSE_NS, "wsu": WSU_NS}
    )
    header = etree.SubElement(envelope, _SOAP + "Header")
    etree.SubElement(header, _WSA + "To").text = to
    if from_ is not None:
        _endpoint_reference(header, "From", from_)
    if reply_to is not None:
        _endpoint_reference(header, "ReplyTo", reply_to)
    etree.SubElement(header, _WSA + "Action").text = action
    etree.SubElement(header, _WSA + "MessageID").text = message_id
    if relates_to is not None:
        etree.SubElement(header, _WSA + "RelatesTo").text = relates_to
    etree.SubElement(envelope, _SOAP + "Body").append(body)
    return envelope


# --- signing -------------------------------------------------------------------------------------


class WsSigner:
    """A party's signing key and certificate for WS-Security, loaded into xmlsec once."""

    def __init__(self, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        pem = key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )  # in memory only, never written
        # Loading costs far more than a signature; xmlsec copies this key into each context.
        self._key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
        self.certificate = certificate
        self._token = base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")

    def __repr__(self) -> str:
        return f"WsSigner({self.certificate.subject.rfc4514_string()})"

    @classmethod
    def from_files(cls, key_path: Path, cert_path: Path, passphrase: bytes | None) -> WsSigner:
        """Key as (encrypted) PEM and certificate as PEM, like `overstap.xml.dsig.Signer`."""
        try:
            key = load_pem_private_key(key_path.read_bytes(), passphrase or None)
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"signing key {key_path.name}", f"cannot load key or certificate ({exc})"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"signing key {key_path.name}", "must be an RSA key")
        return cls(key, certificate)

    def sign(
        self,
        envelope: etree._Element,
        *,
        now: datetime,
        ttl: timedelta = DEFAULT_TTL,
        confirm: str | None = None,
    ) -> str:
        """Add wsse:Security to `envelope` (in place) and return the SignatureValue (base64).

        `confirm` is the SignatureValue of the request being answered: the response then carries
        it as wsse11:SignatureConfirmation, signed like the other parts. The caller keeps the
        returned value of a request to check the response's confirmation with.
        """
        if envelope.tag != _SOAP + "Envelope":
            raise ValueError("not a SOAP 1.1 Envelope")
        header = envelope.find(_SOAP + "Header")
        body = envelope.find(_SOAP + "Body")
        if body is None:
            raise ValueError("the envelope has no Body")
        if header is None:
            header = etree.Element(_SOAP + "Header")
            envelope.insert(0, header)
        if header.find(_WSSE + "Security") is not None:
            raise ValueError("the envelope is signed already")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        if any(not _is_wsa(h) for h in header):
            # Edukoppeling: no custom headers (a receiver answers fault 0010).
            raise ValueError("the Header may hold only WS-Addressing headers")
        if len(body) != 1:
            raise ValueError("the Body must hold exactly one element (Edukoppeling)")
        # Edukoppeling 2W-be-S: Body, every WS-Addressing header and the Timestamp, each signed.
        parts: list[Any] = [body, *(h for h in header if _is_wsa(h))]

        security = etree.SubElement(
            header, _WSSE + "Security", nsmap={"wsse": WSSE_NS, "wsu": WSU_NS}
        )
        security.set(_SOAP + "mustUnderstand", "1")
        timestamp = etree.SubElement(security, _WSU + "Timestamp")
        etree.SubElement(timestamp, _WSU + "Created").text = _utc_text(now)
        etree.SubElement(timestamp, _WSU + "Expires").text = _utc_text(now + ttl)
        parts.append(timestamp)
        token_id = _new_id("X509")
        token = etree.SubElement(
            security,
            _WSSE + "BinarySecurityToken",
            {"EncodingType": BASE64_BINARY, "ValueType": X509V3, _WSU_ID: token_id},
        )
        token.text = self._token
        if confirm is not None:
            confirmation = etree.SubElement(
                security, _WSSE11 + "SignatureConfirmation", nsmap={"wsse11": WSSE11_NS}
            )
            confirmation.set("Value", confirm)
            parts.append(confirmation)

        signature = xmlsec.template.create(
            envelope,
            xmlsec.constants.TransformExclC14N,
            xmlsec.constants.TransformRsaSha256,
            ns="ds",
        )
        security.append(signature)
        for part in parts:
            part_id = _new_id("id")
            part.set(_WSU_ID, part_id)
            ref = xmlsec.template.add_reference(
                signature, xmlsec.constants.TransformSha256, uri="#" + part_id
            )
            xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
        xmlsec.tree.add_ids(envelope, ["Id"])
        ctx = xmlsec.SignatureContext()
        ctx.key = self._key
        try:
            ctx.sign(signature)
        except xmlsec.Error:
            header.remove(security)  # no half-signed envelope is left behind
            raise
        # KeyInfo is not covered by the signature (nothing in it is read as data): appended after.
        key_info = etree.SubElement(signature, _DS + "KeyInfo")
        reference = etree.SubElement(
            etree.SubElement(key_info, _WSSE + "SecurityTokenReference"), _WSSE + "Reference"
        )
        reference.set("URI", "#" + token_id)
        reference.set("ValueType", X509V3)
        value = signature.find(_DS + "SignatureValue")
        return "".join((value.text or "").split())


def _is_wsa(element: Any) -> bool:
    """A WS-Addressing 1.0 message header (the verifier accepts exactly these)."""
    tag = element.tag
    return isinstance(tag, str) and tag.startswith(_WSA) and tag[len(_WSA) :] in _WSA_HEADERS


# --- verifying -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedMessage:
    """A message whose WS-Security held; every value here was read from a signed element."""

    signer: TrustedParty
    signature_value: str
    message_id: str
    action: str
    to: str | None
    relates_to: str | None
    from_: str | None
    reply_to: str | None
    body_child: etree._Element  # the Body's one element child, from the Body that was signed


@dataclass(frozen=True)
class _Reference:
    uri: str
    digest_method: str
    digest_value: str
    prefixes: tuple[str, ...]


_per_thread = threading.local()


def _id_attributes(root: Any) -> list[Any]:
    """Every attribute libxml2 or xmlsec may treat as an ID (wsu:Id, any Id, xml:id)."""
    # Compiled once per thread: lxml XPath objects must not be shared between threads.
    finder = getattr(_per_thread, "id_finder", None)
    if finder is None:
        finder = etree.XPath(_ID_XPATH)
        _per_thread.id_finder = finder
    return list(finder(root))


class WsVerifier:
    def __init__(
        self, trust: TrustStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._trust = trust
        self._clock = clock
        self._keys: dict[bytes, Any] = {}
        self._keys_lock = threading.Lock()

    def verify(
        self,
        envelope: bytes | etree._Element,
        *,
        expected_oin: Oin | None,
        require_confirmation: str | None = None,
        expected_relates_to: str | None = None,
        max_skew: timedelta = DEFAULT_SKEW,
        max_age: timedelta = DEFAULT_TTL,
    ) -> VerifiedMessage:
        """Verify a SOAP message (bytes, or a root parsed by `overstap.xml.safe`) or raise.

        A response is a message verified with `expected_relates_to` or `require_confirmation`:
        it needs wsa:RelatesTo; a request needs wsa:To. `max_age` bounds a Timestamp without
        Expires. Raises `WsSecurityRejected` for every failed check (certificate problems keep
        the trust store's CERT-* rule, with fault 0002).
        """
        root = _parse(envelope)
        header, body = _envelope_parts(root)
        wsa, security = _headers(header)
        is_response = expected_relates_to is not None or require_confirmation is not None
        _required_addressing(wsa, is_response)
        signature = _the_signature(header, security)
        ids = _unique_ids(root)
        timestamp, token, confirmation = _security_children(security)
        if require_confirmation is not None and confirmation is None:
            raise _reject("the response carries no SignatureConfirmation", "WSS-CONFIRMATION")
        parts: dict[Any, str] = {body: "Body", timestamp: "Timestamp"}
        parts.update({h: h.tag[len(_WSA) :] for h in wsa.values()})
        if confirmation is not None:
            parts[confirmation] = "SignatureConfirmation"
        references = _check_signed_info(signature)
        resolved = _match_references(references, ids, parts)
        _no_strangers(security)
        certificate = _token_certificate(signature, token, ids)
        now = self._clock()
        try:
            party = self._trust.validate(
                certificate,
                usage=Usage.SIGNING,
                expected_oin=expected_oin,
                now=now,
                field="SOAP signature",
            )
        except UntrustedCertificate as exc:
            raise WsSecurityRejected(exc.reason, rule=exc.rule) from None
        self._xmlsec_verify(root, signature, certificate)
        # Defence in depth: the digests xmlsec checked must also be those of the elements at the
        # expected positions, whatever xmlsec's id lookup resolved (SECURITY.md: the Body that is
        # read is the Body that was signed).
        for ref, element in resolved:
            _check_digest(ref, element)

        # From here on every value read is covered by the verified signature.
        _check_timestamp(timestamp, now, max_skew, max_age)
        value = "".join((signature.findtext(_DS + "SignatureValue") or "").split())
        if require_confirmation is not None:
            echoed = "".join((confirmation.get("Value") or "").split()).encode()
            if not hmac.compare_digest(echoed, "".join(require_confirmation.split()).encode()):
                raise _reject(
                    "SignatureConfirmation does not echo our request's signature",
                    "WSS-CONFIRMATION",
                )
        relates_to = _text(wsa.get("RelatesTo"))
        if expected_relates_to is not None and relates_to != expected_relates_to:
            raise _reject(
                "wsa:RelatesTo does not name our request's MessageID",
                "WSS-RELATES-TO",
                FAULT_WRONG_HEADER_VALUE,
            )
        return VerifiedMessage(
            signer=party,
            signature_value=value,
            message_id=_text(wsa["MessageID"]) or "",
            action=_text(wsa["Action"]) or "",
            to=_text(wsa.get("To")),
            relates_to=relates_to,
            from_=_address(wsa.get("From")),
            reply_to=_address(wsa.get("ReplyTo")),
            body_child=body[0],
        )

    def _key_for(self, certificate: x509.Certificate) -> Any:
        """The xmlsec key of a validated certificate; loaded once per certificate (bounded)."""
        der = certificate.public_bytes(Encoding.DER)
        with self._keys_lock:
            key = self._keys.get(der)
        if key is None:
            key = xmlsec.Key.from_memory(der, xmlsec.constants.KeyDataFormatCertDer)
            with self._keys_lock:
                if len(self._keys) >= 256:  # partners are few; a flood of certificates is not
                    self._keys.clear()
                self._keys[der] = key
        return key

    def _xmlsec_verify(self, root: Any, signature: Any, certificate: x509.Certificate) -> None:
        # Only "Id" attributes become ids for xmlsec; all of them were checked unique above.
        xmlsec.tree.add_ids(root, ["Id"])
        # Even if the checks above missed something, xmlsec runs no other algorithm.
        ctx = restricted_context(self._key_for(certificate), enveloped=False)
        try:
            ctx.verify(signature)
        except xmlsec.Error:
            raise _reject(
                "signature value or a digest does not match the message", "WSS-INVALID"
            ) from None


def _parse(envelope: bytes | etree._Element) -> Any:
    if not isinstance(envelope, bytes):
        return envelope
    try:
        # Edukoppeling: UTF-8 only; the one hardened parser for outside bytes (SECURITY.md).
        return parse_untrusted(envelope, source="SOAP envelope", require_utf8=True)
    except UnsafeXml as exc:
        fault = FAULT_NOT_UTF8 if exc.rule == RULE_ENCODING else FAULT_INVALID_ENVELOPE
        raise _reject(exc.reason, exc.rule, fault) from None


def _envelope_parts(root: Any) -> tuple[Any, Any]:
    if root.tag != _SOAP + "Envelope":
        raise _reject("not a SOAP 1.1 Envelope", "WSS-ENVELOPE", FAULT_INVALID_ENVELOPE)
    children = list(root)
    if [c.tag for c in children] != [_SOAP + "Header", _SOAP + "Body"]:
        raise _reject(
            "the Envelope must hold exactly one Header and one Body, in that order",
            "WSS-ENVELOPE",
            FAULT_INVALID_ENVELOPE,
        )
    header, body = children
    if len(body) != 1 or (body.text or "").strip() or (body[0].tail or "").strip():
        # Edukoppeling: document/literal with one part, so exactly one Body child.
        raise _reject(
            "the Body must hold exactly one element", "WSS-ENVELOPE", FAULT_INVALID_ENVELOPE
        )
    return header, body


def _headers(header: Any) -> tuple[dict[str, Any], Any]:
    wsa: dict[str, Any] = {}
    securities = []
    for child in header:
        tag = child.tag
        if not isinstance(tag, str):  # a comment or PI: only in a tree not from overstap.xml.safe
            raise _reject(
                "the Header holds a comment or processing instruction",
                "WSS-ENVELOPE",
                FAULT_INVALID_ENVELOPE,
            )
        if tag == _WSSE + "Security":
            securities.append(child)
        elif tag.startswith(_WSA) and tag[len(_WSA) :] in _WSA_HEADERS:
            name = tag[len(_WSA) :]
            if name in wsa:
                raise _reject(
                    f"wsa:{name} appears more than once", "WSS-HEADER", FAULT_WRONG_HEADER_VALUE
                )
            wsa[name] = child
        else:
            # Edukoppeling: no custom headers, only WS-Addressing and WS-Security (fault 0010).
            raise _reject(
                "the Header holds an element that is neither WS-Addressing nor WS-Security",
                "WSS-HEADER",
                FAULT_NON_WSA_HEADER,
            )
    if not securities:
        raise _reject("the message has no wsse:Security header", "WSS-MISSING")
    if len(securities) > 1:
        raise _reject("the message has more than one wsse:Security header", "WSS-STRUCTURE")
    security = securities[0]
    if security.get(_SOAP + "actor") is not None:
        # A Security header addressed to another SOAP node is not ours to rely on.
        raise _reject("the wsse:Security header is addressed to another actor", "WSS-STRUCTURE")
    return wsa, security


def _required_addressing(wsa: dict[str, Any], is_response: bool) -> None:
    required = (
        ("Action", "MessageID", "RelatesTo") if is_response else ("To", "Action", "MessageID")
    )
    for name in required:
        if name not in wsa:
            raise _reject(f"wsa:{name} is missing", "WSS-ADDRESSING", _MISSING_FAULT[name])
    for name, element in wsa.items():
        value = _address(element) if name in ("From", "ReplyTo", "FaultTo") else _text(element)
        if not value:
            raise _reject(f"wsa:{name} is empty", "WSS-ADDRESSING", FAULT_WRONG_HEADER_VALUE)


def _text(element: Any) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def _address(element: Any) -> str | None:
    if element is None:
        return None
    return _text(element.find(_WSA + "Address"))


def _the_signature(header: Any, security: Any) -> Any:
    # A ds:Signature inside the Body belongs to the payload (a dossier carries its own enveloped
    # signature, ADR 4 and 6) and is checked by `overstap.xml.dsig` on the body child; xmlsec only
    # ever runs on the one found here, so a payload signature cannot stand in for it.
    signatures = header.findall(".//" + _DS + "Signature")
    if not signatures:
        raise _reject("the message is not signed", "WSS-MISSING")
    if len(signatures) > 1:
        raise _reject(
            f"the Header holds {len(signatures)} signatures, exactly one is allowed",
            "WSS-STRUCTURE",
        )
    signature = signatures[0]
    if signature.getparent() is not security:
        raise _reject("the signature is not inside the wsse:Security header", "WSS-WRAPPING")
    return signature


def _unique_ids(root: Any) -> dict[str, Any]:
    """Id value -> element; a value used twice is refused (it could resolve to either)."""
    ids: dict[str, Any] = {}
    for attribute in _id_attributes(root):
        value = str(attribute)
        if value in ids:
            raise _reject("an Id value occurs more than once in the message", "WSS-DUPLICATE-ID")
        ids[value] = attribute.getparent()
    return ids


def _security_children(security: Any) -> tuple[Any, Any, Any]:
    found: dict[str, list[Any]] = {}
    for child in security:
        name = {
            _WSU + "Timestamp": "Timestamp",
            _WSSE + "BinarySecurityToken": "BinarySecurityToken",
            _WSSE11 + "SignatureConfirmation": "SignatureConfirmation",
            _DS + "Signature": "Signature",
        }.get(child.tag)
        # Anything else is refused after the references are matched (`_no_strangers`), so that
        # a signed part hidden in here is reported as the wrapping attempt it is.
        if name is not None:
            found.setdefault(name, []).append(child)
    for name, elements in found.items():
        if len(elements) > 1:
            raise _reject(f"wsse:Security holds more than one {name}", "WSS-STRUCTURE")
    if "Timestamp" not in found:
        raise _reject("wsse:Security holds no Timestamp", "WSS-TIMESTAMP")
    if "BinarySecurityToken" not in found:
        raise _reject("wsse:Security holds no BinarySecurityToken", "WSS-KEYINFO")
    confirmation = found.get("SignatureConfirmation", [None])[0]
    return found["Timestamp"][0], found["BinarySecurityToken"][0], confirmation


def _no_strangers(security: Any) -> None:
    known = (
        _WSU + "Timestamp",
        _WSSE + "BinarySecurityToken",
        _WSSE11 + "SignatureConfirmation",
        _DS + "Signature",
    )
    if any(child.tag not in known for child in security):
        raise _reject(
            "wsse:Security holds an element other than Timestamp, BinarySecurityToken, "
            "SignatureConfirmation and Signature",
            "WSS-STRUCTURE",
        )


def _inclusive_prefixes(element: Any) -> tuple[str, ...]:
    """The PrefixList of an optional ec:InclusiveNamespaces child (WSS4J writes one)."""
    children = list(element)
    if not children:
        return ()
    if (
        len(children) != 1
        or children[0].tag != f"{{{EC_NS}}}InclusiveNamespaces"
        or len(children[0])
    ):
        raise _reject("an algorithm element holds unexpected content", "WSS-ALGORITHM")
    return tuple((children[0].get("PrefixList") or "").split())


def _check_signed_info(signature: Any) -> list[_Reference]:
    tags = [c.tag for c in signature]
    if tags not in (
        [_DS + "SignedInfo", _DS + "SignatureValue", _DS + "KeyInfo"],
        [_DS + "SignedInfo", _DS + "SignatureValue"],
    ):
        raise _reject(
            "Signature may hold only SignedInfo, SignatureValue and KeyInfo", "WSS-STRUCTURE"
        )
    parts = list(signature[0])
    if [c.tag for c in parts[:2]] != [_DS + "CanonicalizationMethod", _DS + "SignatureMethod"]:
        raise _reject(
            "SignedInfo must start with CanonicalizationMethod, SignatureMethod", "WSS-STRUCTURE"
        )
    c14n, method = parts[0], parts[1]
    if c14n.get("Algorithm") != EXC_C14N:
        raise _reject("canonicalisation must be exclusive c14n", "WSS-ALGORITHM")
    _inclusive_prefixes(c14n)
    if method.get("Algorithm") not in SIGNATURE_METHODS or len(method):
        raise _reject(
            f"signature method {method.get('Algorithm')} is not allowed (RSA-SHA256 or stronger)",
            "WSS-ALGORITHM",
        )
    references = []
    for ref in parts[2:]:
        if ref.tag != _DS + "Reference":
            raise _reject("SignedInfo may hold only References after the methods", "WSS-STRUCTURE")
        if ref.get("Type") is not None or ref.get("Id") is not None:
            raise _reject("a Reference may not carry Type or Id", "WSS-REFERENCE")
        if [c.tag for c in ref] != [_DS + "Transforms", _DS + "DigestMethod", _DS + "DigestValue"]:
            raise _reject(
                "a Reference must hold Transforms, DigestMethod, DigestValue", "WSS-REFERENCE"
            )
        transforms = list(ref[0])
        if len(transforms) != 1 or transforms[0].get("Algorithm") != EXC_C14N:
            raise _reject("only the exclusive-c14n transform is allowed", "WSS-TRANSFORM")
        prefixes = _inclusive_prefixes(transforms[0])
        digest_method = ref[1].get("Algorithm")
        if digest_method not in DIGEST_METHODS or len(ref[1]):
            raise _reject(
                f"digest method {digest_method} is not allowed (SHA-256 or stronger)",
                "WSS-ALGORITHM",
            )
        references.append(
            _Reference(ref.get("URI") or "", digest_method, ref[2].text or "", prefixes)
        )
    if not references:
        raise _reject("SignedInfo holds no Reference", "WSS-REFERENCE")
    return references


def _match_references(
    references: list[_Reference], ids: dict[str, Any], parts: dict[Any, str]
) -> list[tuple[_Reference, Any]]:
    """Each Reference must lead to one required part at its expected position, each part once."""
    expected_tags = {p.tag for p in parts}
    resolved: list[tuple[_Reference, Any]] = []
    covered: set[str] = set()
    for ref in references:
        # Only same-document "#id" references with a plain NCName: no "" (whole document), no
        # XPointer, no remote URI, no escapes that xmlsec might decode to another id than ours.
        if _ID_REFERENCE.fullmatch(ref.uri) is None:
            raise _reject("only same-document #id references are allowed", "WSS-REFERENCE")
        element = ids.get(ref.uri[1:])
        if element is None:
            raise _reject("a Reference points at an id that does not exist", "WSS-REFERENCE")
        name = parts.get(element)
        if name is None:
            if element.tag in expected_tags:
                # A Body (Timestamp, header...) that is not the one at the expected position: the
                # signed original was moved and a forgery put where it is read.
                raise _reject(
                    "a Reference points at a signed part outside its expected position",
                    "WSS-WRAPPING",
                )
            raise _reject(
                "a Reference points at an element that is not a part to be signed",
                "WSS-REFERENCE",
            )
        if name in covered:
            raise _reject(f"the {name} is referenced more than once", "WSS-REFERENCE")
        covered.add(name)
        resolved.append((ref, element))
    missing = sorted(set(parts.values()) - covered)
    if missing:
        # Edukoppeling 2W-be-S: Body, Timestamp and every WS-Addressing header are each signed.
        raise _reject(f"not signed: {', '.join(missing)}", "WSS-REFERENCE")
    return resolved


def _token_certificate(signature: Any, token: Any, ids: dict[str, Any]) -> x509.Certificate:
    key_info = signature.find(_DS + "KeyInfo")
    if key_info is None or [c.tag for c in key_info] != [_WSSE + "SecurityTokenReference"]:
        # KeyValue, X509Data, KeyName...: the key comes only from our BinarySecurityToken.
        raise _reject(
            "KeyInfo must hold exactly one SecurityTokenReference (no KeyValue or other keys)",
            "WSS-KEYINFO",
        )
    str_children = list(key_info[0])
    if [c.tag for c in str_children] != [_WSSE + "Reference"]:
        raise _reject("SecurityTokenReference must hold one wsse:Reference", "WSS-KEYINFO")
    ref = str_children[0]
    uri = ref.get("URI") or ""
    if (
        ref.get("ValueType") not in (None, X509V3)
        or not _same(ids.get(uri[1:]), token)
        or not uri.startswith("#")
    ):
        raise _reject(
            "SecurityTokenReference must point at the message's BinarySecurityToken",
            "WSS-KEYINFO",
        )
    if token.get("ValueType") != X509V3 or token.get("EncodingType") not in (None, BASE64_BINARY):
        raise _reject("the BinarySecurityToken must be a base64 X.509v3 certificate", "WSS-KEYINFO")
    try:
        return x509.load_der_x509_certificate(
            base64.b64decode("".join((token.text or "").split()), validate=True)
        )
    except ValueError:
        raise _reject("the BinarySecurityToken is not a certificate", "WSS-KEYINFO") from None


def _same(a: object, b: object) -> bool:
    return a is b


def _check_digest(ref: _Reference, element: Any) -> None:
    canonical = etree.tostring(
        element,
        method="c14n",
        exclusive=True,
        with_comments=False,
        inclusive_ns_prefixes=list(ref.prefixes) or None,
    )
    digest = hashlib.new(_HASHES[ref.digest_method], canonical).digest()
    try:
        claimed = base64.b64decode("".join(ref.digest_value.split()), validate=True)
    except ValueError:
        claimed = b""
    if not hmac.compare_digest(digest, claimed):
        raise _reject("a signed part is not the element that was signed", "WSS-WRAPPING")


def _timestamp_value(timestamp: Any, name: str, required: bool) -> datetime | None:
    elements = timestamp.findall(_WSU + name)
    if len(elements) > 1 or (required and not elements):
        raise _reject(f"the Timestamp must hold one {name}", "WSS-TIMESTAMP")
    if not elements:
        return None
    try:
        moment = datetime.fromisoformat((elements[0].text or "").strip())
    except ValueError:
        raise _reject(f"Timestamp {name} is not a dateTime", "WSS-TIMESTAMP") from None
    if moment.tzinfo is None:
        raise _reject(f"Timestamp {name} has no time zone (UTC required)", "WSS-TIMESTAMP")
    return moment.astimezone(UTC)


def _check_timestamp(
    timestamp: Any, now: datetime, max_skew: timedelta, max_age: timedelta
) -> None:
    if any(c.tag not in (_WSU + "Created", _WSU + "Expires") for c in timestamp):
        raise _reject("the Timestamp may hold only Created and Expires", "WSS-TIMESTAMP")
    created = _timestamp_value(timestamp, "Created", required=True)
    expires = _timestamp_value(timestamp, "Expires", required=False)
    assert created is not None
    if expires is None:
        expires = created + max_age
    if expires <= created:
        raise _reject("the Timestamp expires before it was created", "WSS-TIMESTAMP")
    # Clocks of two organisations differ a little: allow max_skew both ways, no more (replay).
    if created > now + max_skew:
        raise _reject("the Timestamp was created in the future", "WSS-TIMESTAMP")
    if now > expires + max_skew:
        raise _reject("the Timestamp has expired", "WSS-TIMESTAMP")
