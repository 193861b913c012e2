"""Enveloped XML signatures (XML-DSig) on our documents, and their strict verification.

Signing: RSA-SHA256 over SHA-256 digests with exclusive c14n, one Reference with URI="" (the
whole document), the signer's certificate and its issuing CA in KeyInfo/X509Data, with a key
loaded once (loading per signature costs 50x). SignedInfo is a fixed template signed by
`cryptography`; python-xmlsec's signing path is the reference it is tested against (ADR 5).

Verification (SECURITY.md) does not trust the signature to describe itself. Before xmlsec runs:
exactly one ds:Signature, the last child of the root; exactly one Reference, URI="" (no ids, so
nothing can be wrapped or moved); only the enveloped and exclusive-c14n transforms; SHA-256 or
stronger; KeyInfo with X509 certificates only (a KeyValue key is never used); the certificate
chains to our trust store, is valid now, is meant for signing and carries the expected OIN.
xmlsec then verifies with the key taken from that validated certificate, with the transforms it
may run restricted to the same list. Comments were removed by the hardened parser before any of
this, so the values read afterwards are exactly the values that were signed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.crypto.trust import TrustedParty, TrustStore, Usage
from overstap.domain.identifiers import Oin
from overstap.errors import ConfigurationError, InvalidRecord

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNATURE_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    }
)
DIGEST_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)
ALLOWED_TRANSFORM_LISTS = ((ENVELOPED, EXC_C14N), (ENVELOPED,))
_DS = f"{{{DSIG_NS}}}"
MAX_CERTS_IN_KEYINFO = 4


class SignatureRejected(InvalidRecord):
    """A signature we do not accept; the rule id says which check failed."""


def _q(local: str) -> str:
    return _DS + local


_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
# SignedInfo exactly as python-xmlsec's template writes it (newline text nodes included), in its
# exclusive-c14n form inside our documents: the only namespace it visibly uses is ds. Only the
# digest varies. `tests/integration/test_dsig.py` proves the output byte-identical to xmlsec's.
_SIGNED_INFO_C14N = (
    f'<ds:SignedInfo xmlns:ds="{DSIG_NS}">\n'
    f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod>\n'
    f'<ds:SignatureMethod Algorithm="{_RSA_SHA256}"></ds:SignatureMethod>\n'
    '<ds:Reference URI="">\n'
    "<ds:Transforms>\n"
    f'<ds:Transform Algorithm="{ENVELOPED}"></ds:Transform>\n'
    f'<ds:Transform Algorithm="{EXC_C14N}"></ds:Transform>\n'
    "</ds:Transforms>\n"
    f'<ds:DigestMethod Algorithm="{_SHA256}"></ds:DigestMethod>\n'
    "<ds:DigestValue>{digest}</ds:DigestValue>\n"
    "</ds:Reference>\n"
    "</ds:SignedInfo>"
)


_DECLARATION = b"<?xml version='1.0' encoding='UTF-8'?>\n"


def _wrapped_base64(data: bytes) -> str:
    """Base64 in lines of 64 characters, as xmlsec writes SignatureValue."""
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64))


class Signer:
    """A sending party's signing key and certificate chain, loaded once and reused.

    The signature has one fixed shape (ADR 4), so SignedInfo is a template with one hole, the
    digest: the document is canonicalised by libxml2 (lxml's exclusive c14n, the same code xmlsec
    runs), hashed, and SignedInfo is signed by `cryptography` (RSA PKCS#1 v1.5, SHA-256). That
    costs the raw RSA operation plus about 60 µs; python-xmlsec's own signing path costs 240 µs
    more per document (its bundled OpenSSL and node-set transforms; ADR 5). PKCS#1 v1.5 is
    deterministic, so `sign_with_xmlsec` - the reference implementation, kept for that purpose -
    must produce the very same bytes, and a test holds the two to it. Verification is always
    xmlsec's (`Verifier`).
    """

    def __init__(
        self,
        key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        self._key = key
        self.certificate = certificate
        self._xmlsec_key: xmlsec.Key | None = None
        cert_texts = [
            base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii")
            for c in (certificate, *chain)
        ]
        self._cert_texts = tuple(cert_texts)
        certs = "".join(f"<ds:X509Certificate>{t}</ds:X509Certificate>" for t in cert_texts)
        # KeyInfo is not covered by SignedInfo (ADR 4): written once, appended after signing.
        self._key_info = f"<ds:KeyInfo><ds:X509Data>{certs}</ds:X509Data></ds:KeyInfo>"

    def __repr__(self) -> str:
        return f"Signer({self.certificate.subject.rfc4514_string()})"

    @classmethod
    def from_files(
        cls,
        key_path: Path,
        cert_path: Path,
        passphrase: bytes | None,
        chain: Sequence[Path] = (),
    ) -> Signer:
        """Key as (encrypted) PEM, certificate and issuing CAs as PEM; chain goes into KeyInfo."""
        try:
            key = load_pem_private_key(key_path.read_bytes(), passphrase or None)
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            extra = [x509.load_pem_x509_certificate(p.read_bytes()) for p in chain]
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"signing key {key_path.name}", f"cannot load key or certificate ({exc})"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"signing key {key_path.name}", "must be an RSA key")
        return cls(key, certificate, extra)

    def sign_bytes(self, data: bytes) -> bytes:
        """A detached RSA PKCS#1 v1.5 SHA-256 signature of `data` (audit checkpoints): what
        `openssl dgst -sha256 -verify` checks with the certificate's public key."""
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def sign(self, root: Any) -> Any:
        """Append an enveloped ds:Signature as the last child of `root` (in place) and return it."""
        for old in root.findall(_q("Signature")):
            root.remove(old)
        # The enveloped transform removes the Signature; appending it adds no text node, so the
        # document before appending is exactly what the Reference covers.
        canonical = etree.tostring(
            root.getroottree(), method="c14n", exclusive=True, with_comments=False
        )
        digest = base64.b64encode(hashlib.sha256(canonical).digest()).decode("ascii")
        signed_info = _SIGNED_INFO_C14N.replace("{digest}", digest)
        value = self._key.sign(signed_info.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        signature = etree.fromstring(
            f'<ds:Signature xmlns:ds="{DSIG_NS}">\n{signed_info}\n'
            f"<ds:SignatureValue>{_wrapped_base64(value)}</ds:SignatureValue>\n"
            f"{self._key_info}</ds:Signature>"
        )
        root.append(signature)
        return root

    def sign_canonical(self, canonical: bytes) -> bytes:
        """Sign a document handed over as its exclusive-c14n bytes; return the signed document.

        For producers that already hold the canonical form (`mappings.dossier_xml` writes it):
        the digest is taken over those bytes and the signature is spliced in before the root's
        end tag, so the tree is neither canonicalised nor serialised again (about 50 µs per
        dossier). The result verifies exactly like `sign` on the parsed tree (tested). Passing
        bytes that are not exclusive-c14n gives a signature that does not verify: never silent.
        """
        end = canonical.rfind(b"</")
        if end <= 0 or not canonical.endswith(b">"):
            raise ValueError("not a canonical XML document")
        digest = base64.b64encode(hashlib.sha256(canonical).digest()).decode("ascii")
        signed_info = _SIGNED_INFO_C14N.replace("{digest}", digest)
        value = self._key.sign(signed_info.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        # Inside ds:Signature the ds prefix is declared already; SignedInfo need not repeat it.
        inner = signed_info.replace(f' xmlns:ds="{DSIG_NS}"', "", 1)
        signature = (
            f'<ds:Signature xmlns:ds="{DSIG_NS}">\n{inner}\n'
            f"<ds:SignatureValue>{_wrapped_base64(value)}</ds:SignatureValue>\n"
            f"{self._key_info}</ds:Signature>"
        ).encode("ascii")
        return _DECLARATION + canonical[:end] + signature + canonical[end:]

    def sign_with_xmlsec(self, root: Any) -> Any:
        """The same signature made by python-xmlsec: the reference `sign` is tested against."""
        for old in root.findall(_q("Signature")):
            root.remove(old)
        if self._xmlsec_key is None:
            pem = self._key.private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
            )  # in memory only, never written
            self._xmlsec_key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
        sig = xmlsec.template.create(
            root, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds"
        )
        root.append(sig)
        ref = xmlsec.template.add_reference(sig, xmlsec.constants.TransformSha256, uri="")
        xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
        xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
        ctx = xmlsec.SignatureContext()
        ctx.key = self._xmlsec_key
        ctx.sign(sig)
        key_info = etree.SubElement(sig, _q("KeyInfo"))
        x509_data = etree.SubElement(key_info, _q("X509Data"))
        for text in self._cert_texts:
            etree.SubElement(x509_data, _q("X509Certificate")).text = text
        return root


@dataclass(frozen=True)
class VerifiedDocument:
    """A document whose signature held; `root` is what was signed (signature included)."""

    root: Any
    signer: TrustedParty


class Verifier:
    def __init__(
        self, trust: TrustStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._trust = trust
        self._clock = clock

    def verify(
        self, root: Any, *, expected_oin: Oin | None, source: str = "document"
    ) -> VerifiedDocument:
        """Verify `root` (parsed by overstap.xml.safe) or raise SignatureRejected/UntrustedCertificate."""

        def reject(message: str, rule: str) -> SignatureRejected:
            return SignatureRejected(message, field=source, rule=rule)

        sig = _the_signature(root, reject)
        _check_signed_info(sig, reject)
        certs = _keyinfo_certificates(sig, reject)
        leaves = [c for c in certs if not _is_ca(c)]
        if len(leaves) != 1:
            raise reject("KeyInfo must hold exactly one end-entity certificate", "SIG-KEYINFO")
        leaf = leaves[0]
        party = self._trust.validate(
            leaf,
            usage=Usage.SIGNING,
            expected_oin=expected_oin,
            extra_intermediates=[c for c in certs if c is not leaf],
            now=self._clock(),
            field=source,
        )
        key = xmlsec.Key.from_memory(
            leaf.public_bytes(Encoding.DER), xmlsec.constants.KeyDataFormatCertDer
        )
        ctx = restricted_context(key, enveloped=True)
        try:
            ctx.verify(sig)
        except xmlsec.Error:
            raise reject(
                "signature value or digest does not match the document", "SIG-INVALID"
            ) from None
        return VerifiedDocument(root, party)


def _the_signature(root: Any, reject: Callable[[str, str], SignatureRejected]) -> Any:
    sigs = root.findall(".//" + _q("Signature"))
    if not sigs:
        raise reject("document is not signed", "SIG-MISSING")
    if len(sigs) > 1:
        raise reject(
            f"document holds {len(sigs)} signatures, exactly one is allowed", "SIG-MULTIPLE"
        )
    sig = sigs[0]
    if sig.getparent() is not root or root[-1] is not sig:
        raise reject("the signature must be the last child of the root element", "SIG-POSITION")
    return sig


def _check_signed_info(sig: Any, reject: Callable[[str, str], SignatureRejected]) -> None:
    children = [c.tag for c in sig]
    if children[:2] != [_q("SignedInfo"), _q("SignatureValue")] or any(
        t not in (_q("SignedInfo"), _q("SignatureValue"), _q("KeyInfo")) for t in children
    ):
        raise reject(
            "Signature may hold only SignedInfo, SignatureValue and KeyInfo", "SIG-STRUCTURE"
        )
    signed_info = sig[0]
    parts = list(signed_info)
    tags = [c.tag for c in parts]
    if tags[:2] != [_q("CanonicalizationMethod"), _q("SignatureMethod")]:
        raise reject(
            "SignedInfo must start with CanonicalizationMethod, SignatureMethod", "SIG-STRUCTURE"
        )
    refs = parts[2:]
    if len(refs) != 1 or refs[0].tag != _q("Reference"):
        raise reject("SignedInfo must hold exactly one Reference", "SIG-REFERENCE")
    if parts[0].get("Algorithm") != EXC_C14N or len(parts[0]):
        raise reject("canonicalisation must be exclusive c14n", "SIG-ALGORITHM")
    if parts[1].get("Algorithm") not in SIGNATURE_METHODS:
        raise reject(
            f"signature method {parts[1].get('Algorithm')} is not allowed (RSA-SHA256 or stronger)",
            "SIG-ALGORITHM",
        )
    ref = refs[0]
    if ref.get("URI") != "":
        raise reject('the Reference must cover the whole document (URI="")', "SIG-REFERENCE")
    if ref.get("Type") is not None or ref.get("Id") is not None:
        raise reject("the Reference may not carry Type or Id", "SIG-REFERENCE")
    ref_children = [c.tag for c in ref]
    if ref_children != [_q("Transforms"), _q("DigestMethod"), _q("DigestValue")]:
        raise reject("Reference must hold Transforms, DigestMethod, DigestValue", "SIG-REFERENCE")
    transforms = tuple(t.get("Algorithm") for t in ref[0])
    if transforms not in ALLOWED_TRANSFORM_LISTS or any(len(t) for t in ref[0]):
        raise reject(
            "only the enveloped and exclusive-c14n transforms are allowed", "SIG-TRANSFORM"
        )
    if ref[1].get("Algorithm") not in DIGEST_METHODS:
        raise reject(
            f"digest method {ref[1].get('Algorithm')} is not allowed (SHA-256 or stronger)",
            "SIG-ALGORITHM",
        )


def _keyinfo_certificates(
    sig: Any, reject: Callable[[str, str], SignatureRejected]
) -> list[x509.Certificate]:
    key_info = sig.find(_q("KeyInfo"))
    if key_info is None:
        raise reject("KeyInfo with the signer's certificate is required", "SIG-KEYINFO")
    if [c.tag for c in key_info] != [_q("X509Data")]:
        # KeyValue, RetrievalMethod, KeyName...: a key that did not come from a certificate.
        raise reject(
            "KeyInfo may hold only one X509Data (no KeyValue or other keys)", "SIG-KEYINFO"
        )
    x509_data = key_info[0]
    if not len(x509_data) or any(c.tag != _q("X509Certificate") for c in x509_data):
        raise reject("X509Data may hold only X509Certificate elements", "SIG-KEYINFO")
    if len(x509_data) > MAX_CERTS_IN_KEYINFO:
        raise reject("too many certificates in KeyInfo", "SIG-KEYINFO")
    certs = []
    for el in x509_data:
        try:
            certs.append(
                x509.load_der_x509_certificate(base64.b64decode("".join((el.text or "").split())))
            )
        except ValueError:
            raise reject("X509Certificate is not a certificate", "SIG-KEYINFO") from None
    return certs


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def restricted_context(key: xmlsec.Key, *, enveloped: bool) -> xmlsec.SignatureContext:
    """A verification context that runs only our algorithms: defence in depth, should a shape
    check ever miss something. (xmlsec checks DigestMethod against the Reference list too.)"""
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    reference = [
        xmlsec.constants.TransformExclC14N,
        xmlsec.constants.TransformSha256,
        xmlsec.constants.TransformSha384,
        xmlsec.constants.TransformSha512,
    ]
    if enveloped:
        reference.append(xmlsec.constants.TransformEnveloped)
    for transform in reference:
        ctx.enable_reference_transform(transform)
    for transform in (
        xmlsec.constants.TransformExclC14N,
        xmlsec.constants.TransformRsaSha256,
        xmlsec.constants.TransformRsaSha384,
        xmlsec.constants.TransformRsaSha512,
    ):
        ctx.enable_signature_transform(transform)
    return ctx


def canonical_bytes(root: Any) -> bytes:
    """The document as it is sent: UTF-8 with declaration (Edukoppeling: UTF-8 only)."""
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
