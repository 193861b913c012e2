"""CMS EnvelopedData against the openssl binary, in both directions, and the algorithm policy."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from overstap.crypto.cms import CmsError, Recipient, decrypt, encrypt

OPENSSL = shutil.which("openssl") or "openssl"


@pytest.fixture(autouse=True)
def _needs_openssl(openssl_bin: str) -> None:
    """Skips locally, fails in CI, when openssl is missing (conftest.missing_service)."""


OAEP_OPTS = [
    "-keyopt",
    "rsa_padding_mode:oaep",
    "-keyopt",
    "rsa_oaep_md:sha256",
    "-keyopt",
    "rsa_mgf1_md:sha256",
]


def _party(name: str, serial: int) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert, key


@pytest.fixture(scope="module")
def mbo() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    return _party("ROC Test encryptie", 1001)


@pytest.fixture(scope="module")
def other() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    return _party("Andere instelling", 1002)


@pytest.fixture
def files(tmp_path: Path, mbo: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> Path:
    cert, key = mbo
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tmp_path


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([OPENSSL, *args], capture_output=True, timeout=60, check=False)


def _openssl_encrypt(files: Path, data: bytes, cipher: str, oaep: bool) -> bytes:
    (files / "plain.bin").write_bytes(data)
    out = files / "openssl.p7m"
    args = [
        "cms",
        "-encrypt",
        "-binary",
        cipher,
        "-outform",
        "DER",
        "-in",
        str(files / "plain.bin"),
    ]
    args += ["-out", str(out), "-recip", str(files / "cert.pem")]
    if oaep:
        args += OAEP_OPTS
    done = _openssl(*args)
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def test_openssl_decrypts_what_we_encrypt(
    files: Path, mbo: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> None:
    data = os.urandom(150_000) + "dossier é".encode()
    (files / "ours.p7m").write_bytes(encrypt(data, [mbo[0]]))
    done = _openssl(
        "cms", "-decrypt", "-inform", "DER", "-in", str(files / "ours.p7m"),
        "-recip", str(files / "cert.pem"), "-inkey", str(files / "key.pem"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == data
    info = _openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", str(files / "ours.p7m"))
    assert b"aes-256-cbc" in info.stdout
    assert b"rsaesOaep" in info.stdout


def test_we_decrypt_openssl_with_oaep_and_aes256(
    files: Path, mbo: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> None:
    data = b"<status>ingeschreven</status>" * 100
    blob = _openssl_encrypt(files, data, "-aes256", oaep=True)
    assert decrypt(blob, Recipient(*mbo)) == data


@pytest.mark.parametrize(
    ("cipher", "oaep", "rule"),
    [
        ("-aes256", False, "CMS-WEAK-KEY-TRANSPORT"),  # RSA PKCS#1 v1.5 key transport
        ("-des3", True, "CMS-WEAK-CIPHER"),
        ("-aes128", True, "CMS-WEAK-CIPHER"),
    ],
)
def test_weak_algorithms_are_refused(
    files: Path, mbo: tuple[x509.Certificate, rsa.RSAPrivateKey], cipher: str, oaep: bool, rule: str
) -> None:
    blob = _openssl_encrypt(files, b"secret", cipher, oaep)
    with pytest.raises(CmsError) as exc:
        decrypt(blob, Recipient(*mbo), source="upload.p7m")
    assert exc.value.rule == rule
    assert "upload.p7m" in str(exc.value)


def test_roundtrip_and_several_recipients(
    mbo: tuple[x509.Certificate, rsa.RSAPrivateKey],
    other: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    blob = encrypt(b"both may read", [mbo[0], other[0]])
    assert decrypt(blob, Recipient(*mbo)) == b"both may read"
    assert decrypt(blob, Recipient(*other)) == b"both may read"


def test_not_addressed_to_us(
    mbo: tuple[x509.Certificate, rsa.RSAPrivateKey],
    other: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    blob = encrypt(b"for mbo only", [mbo[0]])
    with pytest.raises(CmsError) as exc:
        decrypt(blob, Recipient(*other))
    assert exc.value.rule == "CMS-RECIPIENT"


def test_tampered_ciphertext_gives_one_uniform_error(
    mbo: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    blob = bytearray(encrypt(b"x" * 1000, [mbo[0]]))
    blob[-5] ^= 0x01
    with pytest.raises(CmsError) as exc:
        decrypt(bytes(blob), Recipient(*mbo))
    assert exc.value.rule == "CMS-DECRYPT"


@pytest.mark.parametrize("blob", [b"", b"not der at all", b"\x30\x03\x06\x01\x00"])
def test_garbage_is_a_syntax_error(
    mbo: tuple[x509.Certificate, rsa.RSAPrivateKey], blob: bytes
) -> None:
    with pytest.raises(CmsError) as exc:
        decrypt(blob, Recipient(*mbo))
    assert exc.value.rule in {"CMS-SYNTAX", "CMS-TYPE"}


def test_size_limit_before_parsing(mbo: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    with pytest.raises(CmsError) as exc:
        decrypt(b"\x00" * 2048, Recipient(*mbo), max_bytes=1024)
    assert exc.value.rule == "CMS-SIZE"


def test_output_is_canonical_der(
    mbo: tuple[x509.Certificate, rsa.RSAPrivateKey],
    other: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    """The hand-assembled layers re-encode byte for byte through asn1crypto's DER encoder."""
    from asn1crypto import cms as asn1_cms

    for size in (0, 15, 16, 127, 128, 70_000):
        blob = encrypt(os.urandom(size), [mbo[0], other[0]])
        parsed = asn1_cms.ContentInfo.load(blob, strict=True)
        assert parsed.dump(force=True) == blob
