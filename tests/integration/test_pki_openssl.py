"""The development PKI checked by independent tools: the openssl binary and libxmlsec1."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import xmlsec
from lxml import etree

from overstap.domain.identifiers import Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki

PASSPHRASE = "integration passphrase for openssl"
HUB = PartySpec("hub", "Overstap Hub", Oin("00000099000000000001"), "hub")
MBO = PartySpec("mbo-25XY", "ROC Zuid", Oin("00000007253435000000"), "mbo")
OTHER = PartySpec("other", "Andere Partij", Oin("00000099000000000002"), "vo")


@pytest.fixture(autouse=True)
def _needs_openssl(openssl_bin: str) -> None:
    """Skips locally, fails in CI, when openssl is missing (conftest.missing_service)."""


@pytest.fixture(scope="session")
def layout(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    root = tmp_path_factory.mktemp("pki-openssl") / "pki"
    return init_dev_pki(root, [HUB, MBO], PASSPHRASE.encode(), now=datetime.now(UTC))


@pytest.fixture(scope="session")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    """A second, unrelated dev PKI: its certificates must not verify against the first."""
    root = tmp_path_factory.mktemp("pki-foreign") / "pki"
    return init_dev_pki(root, [OTHER], PASSPHRASE.encode())


def openssl(
    openssl_bin: str, *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [openssl_bin, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


# The passphrase goes through the environment, not argv, where `ps` would show it.
PASS_ENV = {"P12_PASS": PASSPHRASE}


@pytest.mark.parametrize("purpose", ["sslclient", "sslserver"])
def test_openssl_verifies_tls_certificate_against_trust_bundle(
    openssl_bin: str, layout: PkiLayout, purpose: str
) -> None:
    tls = layout.cert_path(MBO.slug, "tls")
    result = openssl(
        openssl_bin,
        "verify",
        "-x509_strict",
        "-CAfile",
        layout.trust_bundle_path,
        "-purpose",
        purpose,
        tls,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{tls}: OK"


def test_openssl_refuses_encryption_certificate_for_tls(
    openssl_bin: str, layout: PkiLayout
) -> None:
    """Key usage is enforced: the enc certificate (no digitalSignature) is no TLS client."""
    result = openssl(
        openssl_bin,
        "verify",
        "-CAfile",
        layout.trust_bundle_path,
        "-purpose",
        "sslclient",
        layout.cert_path(MBO.slug, "enc"),
    )
    assert result.returncode != 0
    # X509_V_ERR_INVALID_PURPOSE ("unsuitable certificate purpose"), at the leaf (depth 0).
    assert "error 26 at 0 depth" in result.stdout + result.stderr


def test_openssl_refuses_certificate_of_another_ca(
    openssl_bin: str, layout: PkiLayout, foreign: PkiLayout
) -> None:
    result = openssl(
        openssl_bin,
        "verify",
        "-CAfile",
        layout.trust_bundle_path,
        foreign.cert_path(OTHER.slug, "tls"),
    )
    assert result.returncode != 0
    assert "unable to get local issuer certificate" in result.stdout + result.stderr


def test_openssl_opens_p12_with_the_passphrase_only(openssl_bin: str, layout: PkiLayout) -> None:
    p12 = layout.p12_path(HUB.slug, "sign")
    ok = openssl(
        openssl_bin,
        "pkcs12",
        "-in",
        p12,
        "-passin",
        "env:P12_PASS",
        "-nodes",
        "-noout",
        env=PASS_ENV,
    )
    assert ok.returncode == 0, ok.stderr
    wrong = openssl(
        openssl_bin,
        "pkcs12",
        "-in",
        p12,
        "-passin",
        "env:P12_PASS",
        "-nodes",
        "-noout",
        env={"P12_PASS": "not the passphrase"},
    )
    assert wrong.returncode != 0
    assert "mac verify" in (wrong.stdout + wrong.stderr).lower()


def test_p12_uses_pbes2_aes256_and_a_strong_kdf(openssl_bin: str, layout: PkiLayout) -> None:
    result = openssl(
        openssl_bin,
        "pkcs12",
        "-info",
        "-in",
        layout.p12_path(HUB.slug, "tls"),
        "-passin",
        "env:P12_PASS",
        "-nokeys",
        "-noout",
        env=PASS_ENV,
    )
    assert result.returncode == 0, result.stderr
    info = result.stdout + result.stderr
    assert "MAC: sha256" in info
    bags = re.findall(r"PBES2, PBKDF2, AES-256-CBC, Iteration (\d+), PRF hmacWithSHA256", info)
    assert len(bags) == 2, info  # the certificate bag and the shrouded key bag
    assert all(int(rounds) >= 100_000 for rounds in bags)


def test_p12_carries_the_chain(openssl_bin: str, layout: PkiLayout) -> None:
    result = openssl(
        openssl_bin,
        "pkcs12",
        "-in",
        layout.p12_path(HUB.slug, "tls"),
        "-passin",
        "env:P12_PASS",
        "-nokeys",
        env=PASS_ENV,
    )
    assert result.returncode == 0, result.stderr
    subjects = re.findall(r"^subject=.*CN ?= ?(.+)$", result.stdout, flags=re.MULTILINE)
    assert sorted(subjects) == sorted(
        ["Overstap Hub tls", "Overstap Dev Organisatie Services CA", "Overstap Dev Root CA"]
    )


def test_openssl_reads_encrypted_pem_key(openssl_bin: str, layout: PkiLayout) -> None:
    key = layout.key_path(MBO.slug, "enc")
    ok = openssl(openssl_bin, "pkey", "-in", key, "-passin", "env:P12_PASS", "-noout", env=PASS_ENV)
    assert ok.returncode == 0, ok.stderr
    without = openssl(openssl_bin, "pkey", "-in", key, "-passin", "pass:", "-noout")
    assert without.returncode != 0


def test_openssl_shows_oin_as_subject_serial_number(openssl_bin: str, layout: PkiLayout) -> None:
    result = openssl(
        openssl_bin, "x509", "-noout", "-subject", "-in", layout.cert_path(MBO.slug, "sign")
    )
    assert result.returncode == 0, result.stderr
    assert re.search(rf"serialNumber ?= ?{MBO.oin.value}\b", result.stdout), result.stdout
    assert re.search(r"CN ?= ?ROC Zuid sign$", result.stdout.strip()), result.stdout


def _signed_document(layout: PkiLayout) -> bytes:
    doc = etree.fromstring(b'<r xmlns="urn:overstap:test"><d>signed content</d></r>')
    sig = xmlsec.template.create(doc, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256)
    doc.append(sig)
    ref = xmlsec.template.add_reference(sig, xmlsec.Transform.SHA256, uri="")
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    x509_data = xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(sig))
    xmlsec.template.x509_data_add_certificate(x509_data)
    key = xmlsec.Key.from_file(
        str(layout.key_path(HUB.slug, "sign")), xmlsec.KeyFormat.PEM, PASSPHRASE
    )
    key.load_cert_from_file(str(layout.cert_path(HUB.slug, "sign")), xmlsec.KeyFormat.PEM)
    ctx = xmlsec.SignatureContext()
    ctx.key = key
    ctx.sign(sig)
    return etree.tostring(doc)


def _xmlsec_verifies(document: bytes, trusted: tuple[Path, ...]) -> bool:
    manager = xmlsec.KeysManager()
    for path in trusted:
        manager.load_cert(str(path), xmlsec.KeyFormat.PEM, xmlsec.KeyDataType.TRUSTED)
    tree = etree.fromstring(document)
    try:
        xmlsec.SignatureContext(manager).verify(
            xmlsec.tree.find_node(tree, xmlsec.constants.NodeSignature)
        )
    except xmlsec.Error:
        return False
    return True


def test_libxmlsec1_verifies_with_trusted_pem_paths(layout: PkiLayout, foreign: PkiLayout) -> None:
    """libxmlsec1 reads one certificate per PEM file, hence `trusted_pem_paths` (one each)."""
    document = _signed_document(layout)
    assert _xmlsec_verifies(document, layout.trusted_pem_paths)
    assert not _xmlsec_verifies(document, foreign.trusted_pem_paths)
