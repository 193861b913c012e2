"""A development CA shaped like PKIoverheid, and certificates for every party of a region.

Layout under `root` (see `PkiLayout`)::

    .gitignore            "*": nothing generated here is ever committed
    .passphrase           dev only: random key passphrase when OVERSTAP_KEY_PASSPHRASE is unset
    .lock                 serialises concurrent runs
    ca/root.crt           "Overstap Dev Root CA" (RSA 3072, CA, pathlen 1)
    ca/root.key.pem       encrypted PKCS#8
    ca/issuing.crt        "Overstap Dev Organisatie Services CA" (RSA 3072, CA, pathlen 0)
    ca/issuing.key.pem    encrypted PKCS#8
    ca/trust.pem          root + issuing, for `openssl verify -CAfile` and trust stores
    parties/<slug>/<purpose>.crt|.key.pem|.p12    purpose: sign, enc, tls

Like PKIoverheid services certificates, each party has one certificate per purpose with the OIN
in the subject serialNumber, so a verifier can tell which organisation signed and pick the
right certificate to encrypt for. Production never runs this: it uses real PKIoverheid
certificates from a secrets backend.

`init_dev_pki` is idempotent: it reuses the CA and every existing certificate (a party's key is
never replaced behind its back, since counterparties may have pinned it) and issues only what
is missing.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal, TypeVar, get_args

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from overstap.domain.identifiers import Oin
from overstap.errors import ConfigurationError
from overstap.pki.load import (
    as_utc,
    load_certificate,
    load_private_key,
    required_oin,
    subject_of,
)

_T = TypeVar("_T")

Purpose = Literal["sign", "enc", "tls"]
PURPOSES: Final[tuple[Purpose, ...]] = get_args(Purpose)
PARTY_KINDS: Final = frozenset({"hub", "vo", "mbo", "gemeente"})
CertState = Literal["ok", "expiring", "expired", "not_yet_valid"]

# Names of environment variables, not secrets.
ENV_PASSPHRASE: Final = "OVERSTAP_KEY_PASSPHRASE"  # noqa: S105
ENV_PASSPHRASE_FILE: Final = "OVERSTAP_KEY_PASSPHRASE_FILE"  # noqa: S105
# The PEM keys use cryptography's BestAvailableEncryption (PBKDF2 with few rounds), so a
# passphrase someone types must itself carry the strength.
MIN_PASSPHRASE_CHARS: Final = 16

ROOT_CA_NAME: Final = "Overstap Dev Root CA"
ISSUING_CA_NAME: Final = "Overstap Dev Organisatie Services CA"
CA_ORGANISATION: Final = "Overstap (development)"
CA_KEY_BITS: Final = 3072
PARTY_KEY_BITS: Final = 2048
CA_VALID_DAYS: Final = 3650
# Clocks of the machines that check a fresh certificate are never exactly in step with ours.
NOT_BEFORE_SLACK: Final = timedelta(minutes=5)
# PBKDF2-SHA256 rounds for the PKCS#12 key and certificate bags. Each .p12 derives twice and,
# unlike key generation, the KDF holds the GIL: next to RSA keygen it is the cost of
# `init_dev_pki`. 100k keeps a 60-party region at ~15-20 s on two cores (200k: ~25 s).
P12_KDF_ROUNDS: Final = 100_000

# Directory names and file names come from slugs: keep them to a safe alphabet (no "..", no "/").
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# RFC 5280 upper bounds of commonName and organizationName.
_UB_NAME: Final = 64


# --- parties and layout -----------------------------------------------------------------------


@dataclass(frozen=True)
class PartySpec:
    """An organisation that gets a sign, enc and tls certificate."""

    slug: str
    name: str
    oin: Oin
    kind: str  # "hub" | "vo" | "mbo" | "gemeente"
    dns_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        setting = f"party {self.slug!r}"
        if not _SLUG.fullmatch(self.slug):
            raise ConfigurationError(
                setting, "slug must be letters, digits, '.', '_' or '-' (at most 100)"
            )
        if not self.name.strip():
            raise ConfigurationError(setting, "name is empty")
        if not isinstance(self.oin, Oin):
            raise ConfigurationError(setting, "oin must be an Oin")
        if self.kind not in PARTY_KINDS:
            raise ConfigurationError(
                setting, f"kind {self.kind!r} is not one of {', '.join(sorted(PARTY_KINDS))}"
            )
        # A list would make the frozen spec unhashable; the field is a tuple by contract.
        object.__setattr__(self, "dns_names", tuple(self.dns_names))
        for dns in self.dns_names:
            if not re.fullmatch(r"[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?", dns):
                raise ConfigurationError(setting, f"{dns!r} is not a DNS name")


@dataclass(frozen=True)
class PkiLayout:
    """Where everything lives under `root`; usable on its own to find existing material."""

    root: Path

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def parties_dir(self) -> Path:
        return self.root / "parties"

    @property
    def ca_cert_path(self) -> Path:
        return self.ca_dir / "root.crt"

    @property
    def ca_key_path(self) -> Path:
        return self.ca_dir / "root.key.pem"

    @property
    def issuing_cert_path(self) -> Path:
        return self.ca_dir / "issuing.crt"

    @property
    def issuing_key_path(self) -> Path:
        return self.ca_dir / "issuing.key.pem"

    @property
    def trust_bundle_path(self) -> Path:
        """Root + issuing CA in one PEM: `openssl verify -CAfile`, a TLS trust store.

        Not for xmlsec1 `--trusted-pem`, which reads only the first certificate of a file: use
        `trusted_pem_paths` there.
        """
        return self.ca_dir / "trust.pem"

    @property
    def trusted_pem_paths(self) -> tuple[Path, Path]:
        """Root and issuing CA, one file each.

        For tools that read only the first certificate of a PEM file: libxmlsec1 does, so
        `xmlsec1 --verify` takes `--trusted-pem` once per path here, not trust.pem.
        """
        return (self.ca_cert_path, self.issuing_cert_path)

    @property
    def passphrase_path(self) -> Path:
        return self.root / ".passphrase"

    def party_dir(self, slug: str) -> Path:
        if not _SLUG.fullmatch(slug):
            raise ValueError(f"not a party slug: {slug!r}")
        return self.parties_dir / slug

    def cert_path(self, slug: str, purpose: Purpose) -> Path:
        return self.party_dir(slug) / f"{_purpose(purpose)}.crt"

    def key_path(self, slug: str, purpose: Purpose) -> Path:
        return self.party_dir(slug) / f"{_purpose(purpose)}.key.pem"

    def p12_path(self, slug: str, purpose: Purpose) -> Path:
        return self.party_dir(slug) / f"{_purpose(purpose)}.p12"


def _purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"purpose {purpose!r} is not one of {', '.join(PURPOSES)}")
    return purpose


# --- files --------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Readers see the old file or the whole new one, never a half-written key."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; set the final mode before any byte is written.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_if_changed(path: Path, data: bytes, mode: int) -> None:
    """Idempotent runs leave derived files (trust.pem, .gitignore) untouched."""
    with suppress(FileNotFoundError):
        if path.read_bytes() == data:
            return
    _write_atomic(path, data, mode)


def _ensure_root(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_if_changed(
        root / ".gitignore", b"# generated keys and certificates: never commit\n*\n", 0o644
    )


@contextmanager
def _file_errors_named(root: Path) -> Iterator[None]:
    """A read-only or full PKI directory is a setup problem: one line naming the file."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or root
        raise ConfigurationError(f"PKI directory {root}", f"{where}: {exc.strerror}") from None


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Two `certs init` at once must not both create a CA (the loser's certs would not chain)."""
    with open(root / ".lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _key_pem(key: rsa.RSAPrivateKey, passphrase: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --- passphrase ---------------------------------------------------------------------------------


def passphrase_from(root: Path, env: Mapping[str, str]) -> bytes:
    """The private-key passphrase.

    `OVERSTAP_KEY_PASSPHRASE`, else the file named by `OVERSTAP_KEY_PASSPHRASE_FILE` (Docker
    secrets), else -- development only -- a random passphrase generated once and kept in
    `root/.passphrase` (mode 0600) beside the keys it protects. That last one protects keys
    from a copied backup or a stray commit, not from someone who can read the directory.
    """
    raw = env.get(ENV_PASSPHRASE)
    if raw:
        return _checked_passphrase(raw, ENV_PASSPHRASE)
    secret_file = env.get(ENV_PASSPHRASE_FILE)
    if secret_file:
        text = _read_text(Path(secret_file), ENV_PASSPHRASE_FILE)
        return _checked_passphrase(text.rstrip("\r\n"), ENV_PASSPHRASE_FILE)
    return _dev_passphrase(PkiLayout(root).passphrase_path)


def _checked_passphrase(value: str, setting: str) -> bytes:
    if len(value) < MIN_PASSPHRASE_CHARS:
        raise ConfigurationError(
            setting, f"passphrase is shorter than {MIN_PASSPHRASE_CHARS} characters"
        )
    return value.encode("utf-8")


def _read_text(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(setting, f"cannot read {path}: {exc.strerror}") from None


def _dev_passphrase(path: Path) -> bytes:
    with _file_errors_named(path.parent):
        _ensure_root(path.parent)
        if not path.exists():
            _create_once(path, secrets.token_urlsafe(32) + "\n")
    if path.stat().st_mode & 0o077:
        raise ConfigurationError(str(path), "is readable by group or others; run `chmod 600` on it")
    value = _read_text(path, str(path)).strip()
    if not value:
        raise ConfigurationError(str(path), "is empty; delete it together with the keys")
    return value.encode("utf-8")


def _create_once(path: Path, text: str) -> None:
    """Create `path` with `text` unless it exists; a concurrent creator's value wins intact."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        # link() refuses an existing target, unlike replace(): first writer wins.
        with suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


# --- certificate building ------------------------------------------------------------------------


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    data_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=data_encipherment,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


# The PKIoverheid services split: authenticity (signatures that bind the organisation),
# confidentiality (encrypt to it), and TLS (server and client of mutual TLS).
_PURPOSE_USAGE: Final[dict[str, x509.KeyUsage]] = {
    "sign": _key_usage(digital_signature=True, content_commitment=True),
    "enc": _key_usage(key_encipherment=True, data_encipherment=True),
    "tls": _key_usage(digital_signature=True, key_encipherment=True),
}


def _fit(text: str, limit: int) -> str:
    return text.strip()[:limit].rstrip()


def _ca_subject(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _party_subject(party: PartySpec, purpose: str) -> x509.Name:
    # CN is limited to 64 characters: shorten the name, keep the purpose readable.
    common_name = f"{_fit(party.name, _UB_NAME - len(purpose) - 1)} {purpose}"
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _fit(party.name, _UB_NAME)),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, party.oin.value),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ski_of(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value


def _base_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey,
    moment: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - NOT_BEFORE_SLACK)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _ca_usage() -> x509.KeyUsage:
    return _key_usage(key_cert_sign=True, crl_sign=True)


def _build_root(key: rsa.RSAPrivateKey, moment: datetime) -> x509.Certificate:
    subject = _ca_subject(ROOT_CA_NAME)
    return (
        _base_builder(
            subject, subject, key.public_key(), moment, moment + timedelta(days=CA_VALID_DAYS)
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _build_issuing(
    key: rsa.RSAPrivateKey,
    root_cert: x509.Certificate,
    root_key: rsa.RSAPrivateKey,
    moment: datetime,
) -> x509.Certificate:
    # A CA certificate that outlives its issuer is not valid past the issuer's end anyway.
    not_after = min(moment + timedelta(days=CA_VALID_DAYS), root_cert.not_valid_after_utc)
    return (
        _base_builder(
            _ca_subject(ISSUING_CA_NAME), root_cert.subject, key.public_key(), moment, not_after
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski_of(root_cert)),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )


def _build_party(
    party: PartySpec,
    purpose: str,
    public_key: rsa.RSAPublicKey,
    issuing: x509.Certificate,
    issuing_key: rsa.RSAPrivateKey,
    moment: datetime,
    valid_days: int,
) -> x509.Certificate:
    not_after = min(moment + timedelta(days=valid_days), issuing.not_valid_after_utc)
    builder = (
        _base_builder(
            _party_subject(party, purpose), issuing.subject, public_key, moment, not_after
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_PURPOSE_USAGE[purpose], critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski_of(issuing)),
            critical=False,
        )
    )
    if purpose == "tls":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        ).add_extension(_tls_names(party), critical=False)
    return builder.sign(issuing_key, hashes.SHA256())


def _tls_names(party: PartySpec) -> x509.SubjectAlternativeName:
    dns = list(dict.fromkeys(("localhost", *party.dns_names)))
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    return x509.SubjectAlternativeName(names)


def _p12(
    name: str,
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    passphrase: bytes,
) -> bytes:
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(P12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase)
    )
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, chain, encryption)


def _new_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _in_parallel(work: Callable[[_T], None], items: Sequence[_T]) -> None:
    """Run `work` on one thread per core.

    RSA key generation releases the GIL, the PKCS#12 KDF does not: with two jobs in flight, one
    job's key generation runs while the other's KDF holds the interpreter.
    """
    workers = min(len(items), os.cpu_count() or 1)
    if workers <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pki") as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            for future in futures:
                future.result()
        except BaseException:
            # Stop issuing on the first failure (a full disk fails every job the same way).
            pool.shutdown(wait=True, cancel_futures=True)
            raise


# --- the CA ----------------------------------------------------------------------------------


def _matching_key(key_path: Path, cert: x509.Certificate, passphrase: bytes) -> rsa.RSAPrivateKey:
    key = load_private_key(key_path, passphrase)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        raise ConfigurationError(
            f"private key {key_path}", f"does not belong to the certificate {subject_of(cert)}"
        )
    return key


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _ensure_root_ca(layout: PkiLayout, passphrase: bytes, moment: datetime) -> x509.Certificate:
    if layout.ca_cert_path.exists():
        root_cert = load_certificate(layout.ca_cert_path)
        if not _issued_by(root_cert, root_cert):
            raise ConfigurationError(
                f"certificate {layout.ca_cert_path}", "is not a self-signed root CA"
            )
        return root_cert
    if layout.issuing_cert_path.exists():
        # A new root would not have signed the existing issuing CA: every party cert breaks.
        raise ConfigurationError(
            f"certificate {layout.ca_cert_path}",
            f"missing while {layout.issuing_cert_path.name} exists; remove {layout.root} "
            "to rebuild the whole PKI",
        )
    key = _new_key(CA_KEY_BITS)
    root_cert = _build_root(key, moment)
    # Key first, certificate last: a certificate on disk means its key is there too.
    _write_atomic(layout.ca_key_path, _key_pem(key, passphrase), 0o600)
    _write_atomic(layout.ca_cert_path, _cert_pem(root_cert), 0o644)
    return root_cert


def _ensure_issuing_ca(
    layout: PkiLayout, root_cert: x509.Certificate, passphrase: bytes, moment: datetime
) -> x509.Certificate:
    if layout.issuing_cert_path.exists():
        issuing = load_certificate(layout.issuing_cert_path)
        if not _issued_by(issuing, root_cert):
            raise ConfigurationError(
                f"certificate {layout.issuing_cert_path}",
                f"was not issued by {layout.ca_cert_path}; remove {layout.root} to rebuild",
            )
        return issuing
    root_key = _matching_key(layout.ca_key_path, root_cert, passphrase)
    key = _new_key(CA_KEY_BITS)
    issuing = _build_issuing(key, root_cert, root_key, moment)
    _write_atomic(layout.issuing_key_path, _key_pem(key, passphrase), 0o600)
    _write_atomic(layout.issuing_cert_path, _cert_pem(issuing), 0o644)
    return issuing


# --- party certificates ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Ca:
    root: x509.Certificate
    issuing: x509.Certificate

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.issuing, self.root]


def _check_existing(
    layout: PkiLayout, party: PartySpec, purpose: Purpose, ca: _Ca
) -> x509.Certificate:
    """An existing certificate is reused only if it still fits the party and the CA."""
    path = layout.cert_path(party.slug, purpose)
    cert = load_certificate(path)
    setting = f"certificate {path}"
    remedy = f"remove {layout.party_dir(party.slug)} to issue new keys"
    if not _issued_by(cert, ca.issuing):
        raise ConfigurationError(setting, f"was issued by another CA; {remedy}")
    if required_oin(cert) != party.oin:
        raise ConfigurationError(
            setting, f"carries OIN {required_oin(cert)}, the party has {party.oin}; {remedy}"
        )
    if not layout.key_path(party.slug, purpose).exists():
        raise ConfigurationError(setting, f"exists but its private key is missing; {remedy}")
    return cert


def _restore_p12(
    layout: PkiLayout,
    party: PartySpec,
    purpose: Purpose,
    cert: x509.Certificate,
    ca: _Ca,
    passphrase: bytes,
) -> None:
    """Rebuild a lost .p12 from the key and certificate on disk (same key, no re-keying)."""
    key = _matching_key(layout.key_path(party.slug, purpose), cert, passphrase)
    data = _p12(f"{party.slug}-{purpose}", key, cert, ca.chain, passphrase)
    _write_atomic(layout.p12_path(party.slug, purpose), data, 0o600)


def _issue(
    layout: PkiLayout,
    job: tuple[PartySpec, Purpose],
    ca: _Ca,
    issuing_key: rsa.RSAPrivateKey,
    passphrase: bytes,
    moment: datetime,
    valid_days: int,
) -> None:
    party, purpose = job
    key = _new_key(PARTY_KEY_BITS)
    cert = _build_party(
        party, purpose, key.public_key(), ca.issuing, issuing_key, moment, valid_days
    )
    layout.party_dir(party.slug).mkdir(parents=True, exist_ok=True, mode=0o700)
    # Certificate last: its presence is what marks this purpose as issued (see _ensure_parties).
    _write_atomic(layout.key_path(party.slug, purpose), _key_pem(key, passphrase), 0o600)
    p12 = _p12(f"{party.slug}-{purpose}", key, cert, ca.chain, passphrase)
    _write_atomic(layout.p12_path(party.slug, purpose), p12, 0o600)
    _write_atomic(layout.cert_path(party.slug, purpose), _cert_pem(cert), 0o644)


def _ensure_parties(
    layout: PkiLayout,
    ca: _Ca,
    issuing_key: rsa.RSAPrivateKey,
    parties: list[PartySpec],
    passphrase: bytes,
    moment: datetime,
    valid_days: int,
) -> None:
    jobs: list[tuple[PartySpec, Purpose]] = []
    for party in parties:
        for purpose in PURPOSES:
            if not layout.cert_path(party.slug, purpose).exists():
                jobs.append((party, purpose))
                continue
            cert = _check_existing(layout, party, purpose, ca)
            if not layout.p12_path(party.slug, purpose).exists():
                _restore_p12(layout, party, purpose, cert, ca, passphrase)
    if not jobs:
        return
    _in_parallel(
        lambda job: _issue(layout, job, ca, issuing_key, passphrase, moment, valid_days), jobs
    )


def _unique(parties: Iterable[PartySpec]) -> list[PartySpec]:
    seen: set[str] = set()
    result = []
    for party in parties:
        if party.slug in seen:
            raise ConfigurationError(f"party {party.slug!r}", "listed twice")
        seen.add(party.slug)
        result.append(party)
    return result


def init_dev_pki(
    root: Path,
    parties: Iterable[PartySpec],
    passphrase: bytes,
    *,
    valid_days: int = 365,
    now: datetime | None = None,
) -> PkiLayout:
    """Build the dev CA (once) and issue every party certificate that is not there yet.

    Existing material is reused, never replaced: the CA is loaded with `passphrase`, and a party
    purpose whose `.crt` exists keeps its key (a lost `.p12` is rebuilt from it). A certificate
    that no longer fits (other CA, other OIN, key missing) is an error naming the fix.
    """
    if not passphrase:
        raise ConfigurationError(ENV_PASSPHRASE, "the key passphrase is empty")
    if valid_days < 1:
        raise ConfigurationError("valid_days", f"must be at least 1, got {valid_days}")
    moment = as_utc(now)
    specs = _unique(parties)
    layout = PkiLayout(root)
    with _file_errors_named(root):
        _ensure_root(root)
        _init_locked(layout, specs, passphrase, moment, valid_days)
    return layout


def _init_locked(
    layout: PkiLayout,
    specs: list[PartySpec],
    passphrase: bytes,
    moment: datetime,
    valid_days: int,
) -> None:
    with _locked(layout.root):
        layout.ca_dir.mkdir(exist_ok=True, mode=0o700)
        root_cert = _ensure_root_ca(layout, passphrase, moment)
        ca = _Ca(root_cert, _ensure_issuing_ca(layout, root_cert, passphrase, moment))
        # Opened on every run, even with nothing to issue: a wrong passphrase shows up now,
        # not at the first signature.
        issuing_key = _matching_key(layout.issuing_key_path, ca.issuing, passphrase)
        _write_if_changed(
            layout.trust_bundle_path, _cert_pem(ca.root) + _cert_pem(ca.issuing), 0o644
        )
        layout.parties_dir.mkdir(exist_ok=True, mode=0o700)
        _ensure_parties(layout, ca, issuing_key, specs, passphrase, moment, valid_days)


# --- expiry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertStatus:
    """One certificate's validity at a moment, for `overstap certs status`."""

    path: Path
    subject: str
    oin: Oin | None  # None for the CA certificates, which carry no OIN
    purpose: str  # sign | enc | tls | root-ca | issuing-ca
    not_after: datetime
    days_left: int  # whole days until expiry; negative once expired
    state: CertState


def _state(cert: x509.Certificate, moment: datetime, warn_days: int) -> CertState:
    if moment > cert.not_valid_after_utc:
        return "expired"
    if moment < cert.not_valid_before_utc:
        return "not_yet_valid"
    if cert.not_valid_after_utc - moment <= timedelta(days=warn_days):
        return "expiring"
    return "ok"


def _status(path: Path, purpose: str, moment: datetime, warn_days: int) -> CertStatus:
    cert = load_certificate(path)
    has_oin = bool(cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER))
    return CertStatus(
        path=path,
        subject=subject_of(cert),
        oin=required_oin(cert) if has_oin else None,
        purpose=purpose,
        not_after=cert.not_valid_after_utc,
        days_left=(cert.not_valid_after_utc - moment).days,
        state=_state(cert, moment, warn_days),
    )


def certificate_status(
    root: Path, now: datetime | None = None, warn_days: int = 30
) -> list[CertStatus]:
    """Every CA and party certificate under `root`: ok, expiring (within `warn_days`) or expired."""
    moment = as_utc(now)
    layout = PkiLayout(root)
    found: list[tuple[Path, str]] = [
        (path, purpose)
        for path, purpose in (
            (layout.ca_cert_path, "root-ca"),
            (layout.issuing_cert_path, "issuing-ca"),
        )
        if path.exists()
    ]
    if layout.parties_dir.is_dir():
        found += [(p, p.stem) for p in sorted(layout.parties_dir.glob("*/*.crt"))]
    return [_status(path, purpose, moment, warn_days) for path, purpose in found]
