"""Import smoke tests for the native and pinned dependencies.

lxml and python-xmlsec each link libxml2; when the versions differ, `import xmlsec` fails with
"lxml & xmlsec libxml2 library version mismatch" (or, worse, signatures break at run time). So this
test imports both, compares the libxml2 versions, and signs and verifies a real document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

AIRFLOW_VERSION = "3.3.2"  # pinned in pyproject.toml

DSIG = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

DOCUMENT = (
    b'<dossier xmlns="http://www.edustandaard.nl/oso_gegevensset/2019/dossier" id="D1">'
    b"<leerling><achternaam>Jansen</achternaam></leerling></dossier>"
)


def test_lxml_and_xmlsec_import_with_the_same_libxml2() -> None:
    import lxml.etree  # type: ignore[import-untyped, unused-ignore]
    import xmlsec

    assert xmlsec.get_libxml_version() == lxml.etree.LIBXML_VERSION
    assert xmlsec.get_libxml_compiled_version() == lxml.etree.LIBXML_COMPILED_VERSION


def _key_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _sign(document: bytes, private_pem: bytes) -> bytes:
    import lxml.etree  # type: ignore[import-untyped, unused-ignore]
    import xmlsec

    root = lxml.etree.fromstring(document)
    signature = xmlsec.template.create(
        root, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256
    )
    root.append(signature)
    ref = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri="")
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(private_pem, xmlsec.constants.KeyDataFormatPem)
    ctx.sign(signature)
    return bytes(lxml.etree.tostring(root))


def _verify(signed: bytes, public_pem: bytes) -> None:
    """Raises xmlsec.VerificationError when the signature does not hold."""
    import lxml.etree  # type: ignore[import-untyped, unused-ignore]
    import xmlsec

    root = lxml.etree.fromstring(signed)
    signature = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
    assert signature is not None
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(public_pem, xmlsec.constants.KeyDataFormatPem)
    ctx.verify(signature)


def test_xmlsec_signs_and_verifies_with_a_cryptography_key() -> None:
    import lxml.etree  # type: ignore[import-untyped, unused-ignore]
    import xmlsec

    private_pem, public_pem = _key_pair()
    signed = _sign(DOCUMENT, private_pem)

    root = lxml.etree.fromstring(signed)
    ns = {"ds": DSIG}
    assert root.xpath(
        "ds:Signature/ds:SignedInfo/ds:CanonicalizationMethod/@Algorithm", namespaces=ns
    ) == [EXC_C14N]
    assert root.xpath(
        "ds:Signature/ds:SignedInfo/ds:SignatureMethod/@Algorithm", namespaces=ns
    ) == [RSA_SHA256]
    assert root.xpath("ds:Signature//ds:DigestMethod/@Algorithm", namespaces=ns) == [SHA256]
    assert root.xpath("ds:Signature//ds:Transform/@Algorithm", namespaces=ns) == [
        ENVELOPED,
        EXC_C14N,
    ]
    value = root.xpath("string(ds:Signature/ds:SignatureValue)", namespaces=ns)
    assert len(value.strip()) > 300  # 256 bytes of RSA-2048 signature in base64

    _verify(signed, public_pem)  # serialised and parsed again: the signature travels

    tampered = signed.replace(b"Jansen", b"Janssen")
    assert tampered != signed
    with pytest.raises(xmlsec.VerificationError):
        _verify(tampered, public_pem)

    _, other_public = _key_pair()
    with pytest.raises(xmlsec.VerificationError):
        _verify(signed, other_public)


def test_airflow_imports_with_the_pinned_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a subprocess: importing Airflow configures logging and writes airflow.cfg."""
    home = tmp_path / "airflow-home"
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    code = (
        "import json, os, airflow; "
        "print(json.dumps({'version': airflow.__version__, 'home': os.environ['AIRFLOW_HOME']}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload == {"version": AIRFLOW_VERSION, "home": str(home)}
