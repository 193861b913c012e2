"""Read certificates and encrypted private keys, and check what a certificate says.

Every failure is a `ConfigurationError` naming the file and the reason, raised `from None`: the
underlying exception never carries key material, but a chained traceback of a parser is noise
next to "wrong passphrase". The passphrase itself never appears in a message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from overstap.crypto.trust import read_oin
from overstap.domain.identifiers import Oin
from overstap.errors import ConfigurationError

# cryptography prints the serialNumber attribute as its dotted OID (2.5.4.5=...); people and
# `openssl x509 -subject` call it serialNumber, and it is where the OIN lives.
_NAME_OVERRIDES = {NameOID.SERIAL_NUMBER: "serialNumber"}


def as_utc(now: datetime | None) -> datetime:
    """`now` as an aware UTC datetime (the current time when None); naive times are refused.

    A naive datetime compared with a certificate's UTC validity would silently be off by the
    local UTC offset, which is exactly the size of error an expiry check must not have.
    """
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def subject_of(cert: x509.Certificate) -> str:
    """The subject as an RFC 4514 string, e.g. `CN=ROC Zuid tls,serialNumber=0000...,O=...,C=NL`."""
    return cert.subject.rfc4514_string(_NAME_OVERRIDES)


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(setting, "file not found") from None
    except IsADirectoryError:
        raise ConfigurationError(setting, "is a directory, expected a file") from None
    except PermissionError:
        raise ConfigurationError(setting, "not readable (permission denied)") from None
    except OSError as exc:
        raise ConfigurationError(setting, f"cannot be read: {exc.strerror}") from None


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate in a PEM file, or a DER certificate."""
    setting = f"certificate {path}"
    data = _read(path, setting)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise ConfigurationError(setting, "is not a PEM or DER X.509 certificate") from None


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (a trust store such as ca/trust.pem)."""
    setting = f"certificate bundle {path}"
    data = _read(path, setting)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigurationError(setting, "holds no PEM X.509 certificate") from None


def load_private_key(path: Path, passphrase: bytes) -> rsa.RSAPrivateKey:
    """An encrypted PEM (PKCS#8) RSA private key; unencrypted keys are refused.

    SECURITY.md: keys at rest are encrypted. Accepting a plain key here would let a key that was
    decrypted "just for a moment" stay that way without anyone noticing.
    """
    setting = f"private key {path}"
    if not passphrase:
        raise ConfigurationError(setting, "no passphrase given (OVERSTAP_KEY_PASSPHRASE)")
    data = _read(path, setting)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        # cryptography's way of saying "a password was given but the key is not encrypted".
        raise ConfigurationError(
            setting, "is not encrypted; private keys at rest must be encrypted"
        ) from None
    except UnsupportedAlgorithm:
        raise ConfigurationError(setting, "uses an unsupported key or cipher algorithm") from None
    except ValueError:
        why = (
            "wrong passphrase (or the file is damaged)"
            if b"ENCRYPTED" in data
            else "is not a PEM private key"
        )
        raise ConfigurationError(setting, why) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(setting, f"holds a {type(key).__name__}, expected an RSA key")
    return key


def required_oin(cert: x509.Certificate) -> Oin:
    """The OIN of a certificate we configured ourselves (`crypto.trust.read_oin`'s rule): a
    certificate without exactly one valid OIN is a configuration error naming why."""
    oin, why = read_oin(cert)
    if oin is None:
        raise ConfigurationError(f"certificate {subject_of(cert)}", why)
    return oin


def require_valid(cert: x509.Certificate, now: datetime | None = None) -> None:
    """Refuse a certificate outside its validity period at `now` (default: the current time)."""
    moment = as_utc(now)
    setting = f"certificate {subject_of(cert)}"
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    if moment > not_after:
        raise ConfigurationError(setting, f"expired on {not_after:%Y-%m-%d}")
    if moment < not_before:
        raise ConfigurationError(setting, f"not valid before {not_before:%Y-%m-%d %H:%M} UTC")
