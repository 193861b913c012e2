"""Certificate trust decisions: chain to our trust store, validity, key usage, expected OIN.

Deliberately small and explicit instead of a general path builder: PKIoverheid chains are short
(root -> domain CA -> issuing CA -> end entity), and every check that matters to SECURITY.md is
visible here and tested one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from overstap.domain.identifiers import Oin
from overstap.errors import ConfigurationError, InvalidRecord

MAX_CHAIN = 6

_Fail = Callable[[str, str], "UntrustedCertificate"]


class Usage(Enum):
    """What the end-entity key is about to be trusted for."""

    SIGNING = "signing"  # digitalSignature or nonRepudiation (PKIoverheid authenticity)
    ENCRYPTION = "encryption"  # keyEncipherment
    TLS_CLIENT = "tls_client"
    TLS_SERVER = "tls_server"


class UntrustedCertificate(InvalidRecord):
    """The certificate does not meet our trust rules; the message names which one."""


@dataclass(frozen=True)
class TrustedParty:
    certificate: x509.Certificate
    oin: Oin | None
    chain: tuple[x509.Certificate, ...]  # end entity first, trust anchor last


def read_oin(cert: x509.Certificate) -> tuple[Oin | None, str]:
    """The OIN in the subject serialNumber, where PKIoverheid puts it (DOMAIN.md), or None and
    why not: no serialNumber, several (ambiguous), or one that is not an OIN."""
    attrs = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(attrs) != 1:
        if not attrs:
            return None, "has no OIN (no subject serialNumber)"
        return None, f"has {len(attrs)} subject serialNumber attributes, expected one OIN"
    value = attrs[0].value
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    try:
        return Oin.parse(text), ""
    except InvalidRecord as exc:
        return None, f"subject serialNumber is not an OIN: {exc.reason}"


def oin_of(cert: x509.Certificate) -> Oin | None:
    """A peer's OIN, or None when its certificate carries no single valid one (then the peer is
    refused by the caller)."""
    return read_oin(cert)[0]


def describe(cert: x509.Certificate) -> str:
    """A certificate's subject for messages: organisation and common name, no personal data."""
    parts = [
        str(a.value)
        for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME)
        for a in cert.subject.get_attributes_for_oid(oid)
    ]
    return " / ".join(parts) or cert.subject.rfc4514_string()


class TrustStore:
    """Anchors (self-signed) and intermediates from our trust bundle; both are configuration."""

    def __init__(self, certificates: Iterable[x509.Certificate]) -> None:
        self.anchors: list[x509.Certificate] = []
        self.intermediates: list[x509.Certificate] = []
        for cert in certificates:
            (self.anchors if cert.issuer == cert.subject else self.intermediates).append(cert)
        if not self.anchors:
            raise ConfigurationError("trust store", "holds no self-signed root certificate")
        self._anchor_der = {a.public_bytes(Encoding.DER) for a in self.anchors}

    @classmethod
    def from_pem_file(cls, path: Path) -> TrustStore:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError("trust store", f"cannot read {path}: {exc.strerror}") from None
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise ConfigurationError("trust store", f"{path} holds no PEM certificates") from None
        return cls(certs)

    def validate(
        self,
        leaf: x509.Certificate,
        *,
        usage: Usage,
        expected_oin: Oin | None = None,
        extra_intermediates: Sequence[x509.Certificate] = (),
        now: datetime | None = None,
        field: str = "certificate",
    ) -> TrustedParty:
        """The verified chain of `leaf`, or UntrustedCertificate naming the first failed rule."""
        moment = now or datetime.now(UTC)

        def fail(message: str, rule: str) -> UntrustedCertificate:
            return UntrustedCertificate(message, field=field, rule=rule)

        _check_validity(leaf, moment, fail)
        _check_end_entity(leaf, usage, fail)
        oin = oin_of(leaf)
        if expected_oin is not None and oin != expected_oin:
            raise fail(
                f"certificate of {describe(leaf)} carries OIN {oin or 'none'}, expected {expected_oin}",
                "CERT-OIN",
            )
        chain = [leaf]
        pool = [*self.intermediates, *extra_intermediates]
        current = leaf
        while current.public_bytes(Encoding.DER) not in self._anchor_der:
            if len(chain) > MAX_CHAIN:
                raise fail("chain is too long", "CERT-CHAIN")
            issuer = _find_issuer(current, [*self.anchors, *pool])
            if issuer is None:
                raise fail(
                    f"certificate of {describe(current)} does not chain to our trust store",
                    "CERT-CHAIN",
                )
            _check_validity(issuer, moment, fail)
            _check_ca(issuer, fail)
            chain.append(issuer)
            current = issuer
        return TrustedParty(leaf, oin, tuple(chain))


def _find_issuer(
    cert: x509.Certificate, candidates: Iterable[x509.Certificate]
) -> x509.Certificate | None:
    for cand in candidates:
        if cand.subject != cert.issuer or cand is cert:
            continue
        try:
            cert.verify_directly_issued_by(cand)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return cand
    return None


def _check_validity(cert: x509.Certificate, moment: datetime, fail: _Fail) -> None:
    if moment < cert.not_valid_before_utc:
        raise fail(
            f"certificate of {describe(cert)} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}",
            "CERT-NOT-YET-VALID",
        )
    if moment > cert.not_valid_after_utc:
        raise fail(
            f"certificate of {describe(cert)} expired on {cert.not_valid_after_utc:%Y-%m-%d}",
            "CERT-EXPIRED",
        )


def _check_ca(cert: x509.Certificate, fail: _Fail) -> None:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise fail(f"{describe(cert)} is not marked as a CA", "CERT-CA") from None
    if not bc.ca or not ku.key_cert_sign:
        raise fail(f"{describe(cert)} may not issue certificates", "CERT-CA")


def _check_end_entity(cert: x509.Certificate, usage: Usage, fail: _Fail) -> None:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise fail(f"{describe(cert)} is a CA certificate, not a party's", "CERT-USAGE")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise fail(f"certificate of {describe(cert)} has no key usage", "CERT-USAGE") from None
    allowed = {
        Usage.SIGNING: ku.digital_signature or ku.content_commitment,
        Usage.ENCRYPTION: ku.key_encipherment,
        Usage.TLS_CLIENT: ku.digital_signature,
        Usage.TLS_SERVER: ku.digital_signature or ku.key_encipherment,
    }[usage]
    if not allowed:
        raise fail(
            f"certificate of {describe(cert)} is not for {usage.value} (key usage)", "CERT-USAGE"
        )
    if usage in (Usage.TLS_CLIENT, Usage.TLS_SERVER):
        wanted = (
            ExtendedKeyUsageOID.CLIENT_AUTH
            if usage is Usage.TLS_CLIENT
            else ExtendedKeyUsageOID.SERVER_AUTH
        )
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            raise fail(
                f"certificate of {describe(cert)} has no extended key usage", "CERT-USAGE"
            ) from None
        if wanted not in eku:
            raise fail(f"certificate of {describe(cert)} is not for {usage.value}", "CERT-USAGE")
