"""Enveloped XML signatures: sign with the dev PKI, verify strictly, attack tests, xmlsec1 interop."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import xmlsec
from lxml import etree

from overstap.crypto.trust import TrustStore, UntrustedCertificate
from overstap.domain.identifiers import Brin, BrinVestiging, Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.xml.dsig import DSIG_NS, SignatureRejected, Signer, Verifier, canonical_bytes
from overstap.xml.safe import parse_untrusted

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xml" / "dossier.xml"
PASS = b"test-passphrase-long-enough"
SCHOOL = BrinVestiging(Brin("12AB"))
OTHER = BrinVestiging(Brin("34CD"))
DS = f"{{{DSIG_NS}}}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    root = tmp_path_factory.mktemp("pki")
    parties = [
        PartySpec(slug="vo", name="De Horizon", oin=Oin.for_brin(SCHOOL), kind="vo"),
        PartySpec(slug="other", name="Het Andere College", oin=Oin.for_brin(OTHER), kind="vo"),
    ]
    layout = init_dev_pki(root, parties, PASS)
    past = datetime.now(UTC) - timedelta(days=30)
    expired = PartySpec(slug="expired", name="Verlopen School", oin=Oin.for_brin(SCHOOL), kind="vo")
    init_dev_pki(root, [expired], PASS, now=past, valid_days=2)
    return layout


def _signer(pki: PkiLayout, slug: str, purpose: str = "sign") -> Signer:
    return Signer.from_files(
        pki.key_path(slug, purpose),  # type: ignore[arg-type]
        pki.cert_path(slug, purpose),  # type: ignore[arg-type]
        PASS,
        chain=[pki.issuing_cert_path],
    )


@pytest.fixture(scope="module")
def signer(pki: PkiLayout) -> Signer:
    return _signer(pki, "vo")


@pytest.fixture(scope="module")
def verifier(pki: PkiLayout) -> Verifier:
    return Verifier(TrustStore.from_pem_file(pki.trust_bundle_path))


def _signed(signer: Signer) -> bytes:
    root = parse_untrusted(FIXTURE.read_bytes())
    return canonical_bytes(signer.sign(root))


def _verify(verifier: Verifier, data: bytes, oin: Oin | None = None) -> Any:
    return verifier.verify(parse_untrusted(data), expected_oin=oin or Oin.for_brin(SCHOOL))


def _mutate(data: bytes, change: Callable[[Any], None]) -> bytes:
    root = etree.fromstring(data)
    change(root)
    return bytes(etree.tostring(root))


def test_sign_and_verify(signer: Signer, verifier: Verifier) -> None:
    doc = _verify(verifier, _signed(signer))
    assert doc.signer.oin == Oin.for_brin(SCHOOL)
    assert len(doc.signer.chain) == 3  # party, issuing CA, root


def _documents() -> list[tuple[str, Any]]:
    from dossier_samples import ENVELOPE, golden_cases

    from mappings.dossier_xml import dossier_to_xml

    docs = [(name, dossier_to_xml(d, ENVELOPE)) for name, d in golden_cases().items()]
    # A comment and a processing instruction outside the root, whitespace, a foreign prefix:
    # URI="" semantics (comments dropped, PIs kept) must match xmlsec's exactly.
    odd = b"""<?xml version="1.0"?>\n<!-- c --><?pi x?>\n<a xmlns="urn:x" xmlns:f="urn:f">
      <f:b f:attr="1">t&amp;x</f:b><!-- inner --></a>"""
    docs.append(("odd", etree.fromstring(odd).getroottree().getroot()))
    docs.append(("fixture", etree.parse(str(FIXTURE)).getroot()))
    return docs


def test_fast_signature_is_byte_identical_to_xmlsecs(signer: Signer) -> None:
    """ADR 5: SignedInfo from a template, signed by cryptography, equals python-xmlsec's output
    (PKCS#1 v1.5 is deterministic), for every golden dossier and some awkward documents."""
    for name, root in _documents():
        reference = copy.deepcopy(root.getroottree()).getroot()  # with top-level siblings
        ours = etree.tostring(signer.sign(root).getroottree())
        theirs = etree.tostring(signer.sign_with_xmlsec(reference).getroottree())
        assert ours == theirs, name


def test_signing_canonical_bytes_equals_signing_the_tree(
    signer: Signer, verifier: Verifier
) -> None:
    """The pipeline's shortcut (sign the writer's canonical bytes) gives the same signed
    document as signing the parsed tree, and it verifies."""
    from dossier_samples import ENVELOPE, golden_cases

    from mappings.dossier_xml import dossier_document

    for name, d in golden_cases().items():
        doc = dossier_document(d, ENVELOPE)
        spliced = signer.sign_canonical(doc.canonical)
        tree = etree.tostring(signer.sign(doc.root), method="c14n")
        assert etree.tostring(etree.fromstring(spliced), method="c14n") == tree, name
        verifier.verify(parse_untrusted(spliced), expected_oin=Oin.for_brin(SCHOOL))
    tampered = signer.sign_canonical(dossier_document(d, ENVELOPE).canonical).replace(
        b"Bakker", b"Backer", 1
    )
    with pytest.raises(SignatureRejected):
        verifier.verify(parse_untrusted(tampered), expected_oin=Oin.for_brin(SCHOOL))


def test_signature_uses_the_required_algorithms(signer: Signer) -> None:
    root = etree.fromstring(_signed(signer))
    sig = root[-1]
    assert sig.tag == DS + "Signature"
    algs = {e.get("Algorithm") for e in sig.iter() if e.get("Algorithm")}
    assert "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" in algs
    assert "http://www.w3.org/2001/04/xmlenc#sha256" in algs
    assert "http://www.w3.org/2001/10/xml-exc-c14n#" in algs
    assert len(sig.findall(f".//{DS}X509Certificate")) == 2
    assert sig.find(f".//{DS}KeyValue") is None


def test_xmlsec1_verifies_what_we_sign(
    signer: Signer, pki: PkiLayout, xmlsec1_bin: str, tmp_path: Path
) -> None:
    good = tmp_path / "signed.xml"
    good.write_bytes(_signed(signer))
    args = [
        xmlsec1_bin,
        "--verify",
        "--enabled-key-data",
        "x509",
        "--trusted-pem",
        str(pki.ca_cert_path),
    ]
    ok = subprocess.run([*args, str(good)], capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout + ok.stderr
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(good.read_bytes().replace(b"De Horizon", b"De Horizom", 1))
    bad = subprocess.run(
        [*args, str(tampered)], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode != 0


def test_tampered_value_is_rejected(signer: Signer, verifier: Verifier) -> None:
    data = _signed(signer).replace(b"De Horizon", b"De Horizom", 1)
    with pytest.raises(SignatureRejected) as exc:
        _verify(verifier, data)
    assert exc.value.rule == "SIG-INVALID"


def test_comment_inside_a_value_reads_whole_and_still_verifies(
    signer: Signer, verifier: Verifier
) -> None:
    data = _signed(signer).replace(b"De Horizon", b"De <!-- x -->Horizon", 1)
    doc = _verify(verifier, data)
    names = [e.text for e in doc.root.iter("{urn:overstap:dossier:1}naam")]
    assert "Scholengemeenschap De Horizon" in names


def test_unsigned_is_rejected(signer: Signer, verifier: Verifier) -> None:
    data = _mutate(_signed(signer), lambda r: r.remove(r[-1]))
    with pytest.raises(SignatureRejected) as exc:
        _verify(verifier, data)
    assert exc.value.rule == "SIG-MISSING"


def test_wrapping_signature_moved_and_forged_content(signer: Signer, verifier: Verifier) -> None:
    """The signed original is tucked away inside the signature's parent; a forgery takes its place."""

    def wrap(root: Any) -> None:
        sig = root[-1]
        root.remove(sig)
        root[0].append(sig)  # signature no longer the last child of the root

    with pytest.raises(SignatureRejected) as exc:
        _verify(verifier, _mutate(_signed(signer), wrap))
    assert exc.value.rule == "SIG-POSITION"


def test_second_signature_is_rejected(signer: Signer, verifier: Verifier) -> None:
    def dup(root: Any) -> None:
        root[0].append(copy.deepcopy(root[-1]))

    with pytest.raises(SignatureRejected) as exc:
        _verify(verifier, _mutate(_signed(signer), dup))
    assert exc.value.rule == "SIG-MULTIPLE"


def test_reference_to_an_id_is_rejected(signer: Signer, verifier: Verifier) -> None:
    def by_id(root: Any) -> None:
        root.find(f".//{DS}Reference").set("URI", "#x")

    with pytest.raises(SignatureRejected) as exc:
        _verify(verifier, _mutate(_signed(signer), by_id))
    assert exc.value.rule == "SIG-REFERENCE"


def test_sha1_digest_is_rejected(signer: Signer, verifier: Verifier) -> None:
    def sha1(root: Any) -> None:
        root.find(f".//{DS}DigestMethod").set("Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")

    with pytest.raises(SignatureRejected) as exc:
        _verify(verifier, _mutate(_signed(signer), sha1))
    assert exc.value.rule == "SIG-ALGORITHM"


def test_key_substitution_via_keyvalue_is_rejected(verifier: Verifier) -> None:
    """An attacker signs with their own key and ships it as KeyValue: never used."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    own = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = own.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    root = parse_untrusted(FIXTURE.read_bytes())
    sig = xmlsec.template.create(
        root, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256
    )
    root.append(sig)
    ref = xmlsec.template.add_reference(sig, xmlsec.constants.TransformSha256, uri="")
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
    xmlsec.template.add_key_value(xmlsec.template.ensure_key_info(sig))
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)
    ctx.sign(sig)
    with pytest.raises(SignatureRejected) as exc:
        _verify(verifier, canonical_bytes(root))
    assert exc.value.rule == "SIG-KEYINFO"


@pytest.mark.parametrize(
    ("slug", "purpose", "rule"),
    [
        ("other", "sign", "CERT-OIN"),  # another party of the same CA
        ("expired", "sign", "CERT-EXPIRED"),
        ("vo", "enc", "CERT-USAGE"),  # an encryption certificate is not for signing
    ],
)
def test_certificate_rules(
    pki: PkiLayout, verifier: Verifier, slug: str, purpose: str, rule: str
) -> None:
    data = _signed(_signer(pki, slug, purpose))
    with pytest.raises(UntrustedCertificate) as exc:
        _verify(verifier, data)
    assert exc.value.rule == rule


def test_certificate_from_another_ca_is_rejected(verifier: Verifier, tmp_path: Path) -> None:
    """Same name and OIN, but issued by a CA we do not trust."""
    foreign = init_dev_pki(
        tmp_path / "foreign",
        [PartySpec(slug="vo", name="De Horizon", oin=Oin.for_brin(SCHOOL), kind="vo")],
        PASS,
    )
    with pytest.raises(UntrustedCertificate) as exc:
        _verify(verifier, _signed(_signer(foreign, "vo")))
    assert exc.value.rule == "CERT-CHAIN"
