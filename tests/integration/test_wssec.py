"""Edukoppeling WS-Security (2W-be-S): sign, verify strictly, the attacks of SECURITY.md, xmlsec1.

Most attacks are built as messages with a *valid* signature by a key the attacker holds (a
partner's key from our own dev CA, or a key of their own), made with `_resign`: so each test shows
that the policy check itself refuses the message, not merely that a broken digest fails in xmlsec.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from overstap.crypto.trust import TrustStore
from overstap.domain.identifiers import Brin, BrinVestiging, Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.xml.dsig import DSIG_NS, canonical_bytes
from overstap.xml.wssec import (
    SOAP_NS,
    WSA_NS,
    WSSE11_NS,
    WSSE_NS,
    WSU_NS,
    VerifiedMessage,
    WsSecurityRejected,
    WsSigner,
    WsVerifier,
    build_envelope,
)

PASS = b"test-passphrase-long-enough"
SCHOOL = Oin.for_brin(BrinVestiging(Brin("12AB")))
MBO = Oin.for_brin(BrinVestiging(Brin("34CD")))
OTHER = Oin.for_brin(BrinVestiging(Brin("56EF")))
BSN = "123456782"  # appears in every Body; must never appear in an error message
ACTION = "urn:overstap:dossier:1:LeverDossier"
REQUEST_ID = "urn:uuid:6f1c7a3e-0d7e-4a8e-9a51-1f0c2b7d9e01"
RESPONSE_ID = "urn:uuid:0b5d1e52-8f55-4a0c-b0a4-5c3d2e1f0a99"
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)

DS = f"{{{DSIG_NS}}}"
SOAP = f"{{{SOAP_NS}}}"
WSA = f"{{{WSA_NS}}}"
WSSE = f"{{{WSSE_NS}}}"
WSU = f"{{{WSU_NS}}}"
WSSE11 = f"{{{WSSE11_NS}}}"
WSU_ID = WSU + "Id"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    root = tmp_path_factory.mktemp("pki")
    parties = [
        PartySpec(slug="vo", name="De Horizon", oin=SCHOOL, kind="vo"),
        PartySpec(slug="mbo", name="Regio College Oost", oin=MBO, kind="mbo"),
        PartySpec(slug="other", name="Het Andere College", oin=OTHER, kind="mbo"),
    ]
    layout = init_dev_pki(root, parties, PASS, now=NOW - timedelta(days=1))
    expired = PartySpec(slug="expired", name="Verlopen School", oin=SCHOOL, kind="vo")
    init_dev_pki(root, [expired], PASS, now=NOW - timedelta(days=30), valid_days=2)
    return layout


def _signer(pki: PkiLayout, slug: str, purpose: str = "sign") -> WsSigner:
    return WsSigner.from_files(
        pki.key_path(slug, purpose),  # type: ignore[arg-type]
        pki.cert_path(slug, purpose),  # type: ignore[arg-type]
        PASS,
    )


def _private_key(pki: PkiLayout, slug: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pki.key_path(slug, "sign").read_bytes(), PASS)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def school(pki: PkiLayout) -> WsSigner:
    return _signer(pki, "vo")


@pytest.fixture(scope="module")
def mbo(pki: PkiLayout) -> WsSigner:
    return _signer(pki, "mbo")


@pytest.fixture(scope="module")
def verifier(pki: PkiLayout) -> WsVerifier:
    return WsVerifier(TrustStore.from_pem_file(pki.trust_bundle_path), clock=lambda: NOW)


def _dossier() -> Any:
    return etree.fromstring(
        f'<d:dossier xmlns:d="urn:overstap:dossier:1"><d:leerling><d:bsn>{BSN}</d:bsn>'
        "<d:naam>Jansen</d:naam></d:leerling></d:dossier>".encode()
    )


def _request(signer: WsSigner, *, now: datetime = NOW) -> tuple[bytes, str]:
    env = build_envelope(
        _dossier(),
        to=f"https://mbo.example.invalid/dossier?oin={MBO}",
        action=ACTION,
        message_id=REQUEST_ID,
        from_=f"https://hub.example.invalid/?oin={SCHOOL}",
        reply_to="http://www.w3.org/2005/08/addressing/anonymous",
    )
    value = signer.sign(env, now=now)
    return canonical_bytes(env), value


def _response(signer: WsSigner, confirm: str | None, *, relates_to: str = REQUEST_ID) -> bytes:
    receipt = etree.fromstring(b'<r:receipt xmlns:r="urn:overstap:receipt:1">ok</r:receipt>')
    env = build_envelope(
        receipt,
        to="http://www.w3.org/2005/08/addressing/anonymous",
        action=ACTION + "Response",
        message_id=RESPONSE_ID,
        relates_to=relates_to,
    )
    signer.sign(env, now=NOW, confirm=confirm)
    return canonical_bytes(env)


def _verify(verifier: WsVerifier, data: bytes, oin: Oin = SCHOOL) -> VerifiedMessage:
    return verifier.verify(data, expected_oin=oin)


def _rejected(call: Callable[[], object], rule: str, fault: str = "0002") -> WsSecurityRejected:
    with pytest.raises(WsSecurityRejected) as exc:
        call()
    assert (exc.value.rule, exc.value.fault_code) == (rule, fault), str(exc.value)
    assert BSN not in str(exc.value) and "Jansen" not in str(exc.value)  # no personal data
    return exc.value


def _mutate(data: bytes, change: Callable[[Any], None]) -> bytes:
    root = etree.fromstring(data)
    change(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _security(root: Any) -> Any:
    return root.find(f"{SOAP}Header/{WSSE}Security")


def _signed_info(root: Any) -> Any:
    return root.find(f".//{DS}SignedInfo")


def _reference_to(root: Any, element: Any) -> Any:
    return _signed_info(root).find(f"{DS}Reference[@URI='#{element.get(WSU_ID)}']")


def _resign(root: Any, key: rsa.RSAPrivateKey, *, digests: bool = False) -> None:
    """Make the signature valid again after a change, as an attacker holding `key` would.

    With `digests`, every Reference's DigestValue is recomputed too (with its DigestMethod).
    """
    signed_info = _signed_info(root)
    if digests:
        for ref in signed_info.findall(f"{DS}Reference"):
            target = root.xpath(
                "//*[@wsu:Id=$id]", namespaces={"wsu": WSU_NS}, id=ref.get("URI")[1:]
            )[0]
            algorithm = ref.find(f"{DS}DigestMethod").get("Algorithm")
            name = "sha1" if algorithm == SHA1 else "sha256"
            inclusive = ref.find(f"{DS}Transforms/{DS}Transform/{{{EXC_C14N}}}InclusiveNamespaces")
            prefixes = None if inclusive is None else inclusive.get("PrefixList").split()
            canonical = etree.tostring(
                target, method="c14n", exclusive=True, inclusive_ns_prefixes=prefixes
            )
            ref.find(f"{DS}DigestValue").text = base64.b64encode(
                hashlib.new(name, canonical).digest()
            ).decode()
    canonical = etree.tostring(signed_info, method="c14n", exclusive=True)
    value = key.sign(canonical, padding.PKCS1v15(), hashes.SHA256())
    root.find(f".//{DS}SignatureValue").text = base64.b64encode(value).decode()


# --- round trips ---------------------------------------------------------------------------------


def test_request_round_trip(school: WsSigner, verifier: WsVerifier) -> None:
    data, value = _request(school)
    msg = _verify(verifier, data)
    assert msg.signer.oin == SCHOOL
    assert msg.signature_value == value
    assert (msg.message_id, msg.action, msg.relates_to) == (REQUEST_ID, ACTION, None)
    assert msg.to == f"https://mbo.example.invalid/dossier?oin={MBO}"
    assert msg.from_ == f"https://hub.example.invalid/?oin={SCHOOL}"
    assert msg.body_child.tag == "{urn:overstap:dossier:1}dossier"
    assert msg.body_child.findtext(".//{urn:overstap:dossier:1}bsn") == BSN
    # A parsed root is accepted as well as bytes.
    from overstap.xml.safe import parse_untrusted

    assert verifier.verify(parse_untrusted(data), expected_oin=SCHOOL).message_id == REQUEST_ID


def test_signature_shape(school: WsSigner) -> None:
    """2W-be-S: one reference per part, exclusive c14n, SHA-256, RSA-SHA256, BST, fresh ids."""
    data, _ = _request(school)
    root = etree.fromstring(data)
    security = _security(root)
    assert security.get(SOAP + "mustUnderstand") == "1"
    assert [c.tag for c in security] == [
        WSU + "Timestamp",
        WSSE + "BinarySecurityToken",
        DS + "Signature",
    ]
    created = security.findtext(f"{WSU}Timestamp/{WSU}Created")
    expires = security.findtext(f"{WSU}Timestamp/{WSU}Expires")
    assert (created, expires) == ("2026-12-02T06:00:00.000Z", "2026-12-02T06:05:00.000Z")
    parts = [root.find(f"{SOAP}Body"), security[0], *root.find(f"{SOAP}Header").iterfind(f"{WSA}*")]
    assert len(parts) == 7  # Body, Timestamp, To, From, ReplyTo, Action, MessageID
    refs = _signed_info(root).findall(f"{DS}Reference")
    assert sorted(r.get("URI") for r in refs) == sorted("#" + p.get(WSU_ID) for p in parts)
    algorithms = {e.get("Algorithm") for e in _signed_info(root).iter() if e.get("Algorithm")}
    assert algorithms == {
        EXC_C14N,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmlenc#sha256",
    }
    token_ref = root.find(f".//{DS}KeyInfo/{WSSE}SecurityTokenReference/{WSSE}Reference")
    assert token_ref.get("URI") == "#" + security[1].get(WSU_ID)
    assert root.find(f".//{DS}KeyValue") is None
    ids = [e.get(WSU_ID) for e in root.iter() if e.get(WSU_ID)]
    assert len(ids) == len(set(ids)) == 8
    assert BSN not in "".join(ids)
    second = etree.fromstring(_request(school)[0])
    assert second.find(f"{SOAP}Body").get(WSU_ID) != root.find(f"{SOAP}Body").get(WSU_ID)


def test_signing_twice_is_refused(school: WsSigner) -> None:
    env = build_envelope(_dossier(), to="urn:x", action=ACTION, message_id=REQUEST_ID)
    school.sign(env, now=NOW)
    with pytest.raises(ValueError, match="signed already"):
        school.sign(env, now=NOW)
    custom = build_envelope(_dossier(), to="urn:x", action=ACTION, message_id=REQUEST_ID)
    etree.SubElement(custom.find(f"{SOAP}Header"), "{urn:x}custom")
    with pytest.raises(ValueError, match="only WS-Addressing"):
        school.sign(custom, now=NOW)


def test_response_with_signature_confirmation(
    school: WsSigner, mbo: WsSigner, verifier: WsVerifier
) -> None:
    _, request_value = _request(school)
    data = _response(mbo, request_value)
    msg = verifier.verify(
        data, expected_oin=MBO, require_confirmation=request_value, expected_relates_to=REQUEST_ID
    )
    assert (msg.relates_to, msg.message_id, msg.signer.oin) == (REQUEST_ID, RESPONSE_ID, MBO)
    root = etree.fromstring(data)
    confirmation = _security(root).find(f"{WSSE11}SignatureConfirmation")
    assert confirmation.get("Value") == request_value
    assert _reference_to(root, confirmation) is not None  # signed like the other parts


# --- signature wrapping --------------------------------------------------------------------------


def _move_body(into: Callable[[Any], Any], forged_id: str | None = None) -> Callable[[Any], None]:
    def change(root: Any) -> None:
        body = root.find(f"{SOAP}Body")
        root.remove(body)
        into(root).append(body)
        forged = etree.SubElement(root, SOAP + "Body")
        if forged_id is not None:
            forged.set(WSU_ID, body.get(WSU_ID) if forged_id == "same" else forged_id)
        etree.SubElement(forged, "{urn:overstap:dossier:1}dossier").text = "forged"

    return change


def test_signed_body_moved_into_security_header_and_forged_body(
    school: WsSigner, verifier: WsVerifier
) -> None:
    """The classic wrapping attack: the signed Body hides in the header, a forgery is read."""
    data, _ = _request(school)
    for forged_id in (None, "id-forged"):
        attack = _mutate(data, _move_body(_security, forged_id))
        with pytest.raises(WsSecurityRejected) as exc:
            _verify(verifier, attack)
        assert (exc.value.rule, exc.value.fault_code) == ("WSS-WRAPPING", "0002")


def test_signed_body_moved_into_an_addressing_header(
    school: WsSigner, verifier: WsVerifier
) -> None:
    data, _ = _request(school)
    attack = _mutate(data, _move_body(lambda r: r.find(f"{SOAP}Header/{WSA}ReplyTo"), "id-forged"))
    _rejected(lambda: _verify(verifier, attack), "WSS-WRAPPING")


def test_signed_body_moved_as_a_header_of_its_own(school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)
    attack = _mutate(data, _move_body(lambda r: r.find(f"{SOAP}Header")))
    _rejected(lambda: _verify(verifier, attack), "WSS-HEADER", "0010")


def test_forged_body_with_the_same_id_is_a_duplicate(
    school: WsSigner, verifier: WsVerifier
) -> None:
    data, _ = _request(school)
    attack = _mutate(data, _move_body(_security, "same"))
    _rejected(lambda: _verify(verifier, attack), "WSS-DUPLICATE-ID")


@pytest.mark.parametrize("attribute", [WSU_ID, "Id", "{http://www.w3.org/XML/1998/namespace}id"])
def test_duplicate_ids_are_rejected(school: WsSigner, verifier: WsVerifier, attribute: str) -> None:
    """Whichever element an id lookup would find, a value used twice is refused."""
    data, _ = _request(school)

    def dup(root: Any) -> None:
        body_id = root.find(f"{SOAP}Body").get(WSU_ID)
        root.find(f"{SOAP}Body")[0].set(attribute, body_id)

    _rejected(lambda: _verify(verifier, _mutate(data, dup)), "WSS-DUPLICATE-ID")


def test_defence_in_depth_digest_check_catches_what_xmlsec_would_miss(
    school: WsSigner, verifier: WsVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With xmlsec's verification switched off, the own digest check over the element at its
    expected position still refuses a changed Body."""
    monkeypatch.setattr(WsVerifier, "_xmlsec_verify", lambda *a: None)
    data, _ = _request(school)
    _rejected(lambda: _verify(verifier, data.replace(b"Jansen", b"Janssen")), "WSS-WRAPPING")
    _verify(verifier, data)  # and the genuine message still passes without xmlsec


# --- missing, unsigned, redirected parts ----------------------------------------------------------


def test_signature_removed(school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)
    no_sig = _mutate(data, lambda r: _security(r).remove(_security(r).find(f"{DS}Signature")))
    _rejected(lambda: _verify(verifier, no_sig), "WSS-MISSING")
    no_security = _mutate(data, lambda r: r.find(f"{SOAP}Header").remove(_security(r)))
    _rejected(lambda: _verify(verifier, no_security), "WSS-MISSING")


@pytest.mark.parametrize(
    "target", ["token", "nowhere", "whole-document", "xpointer", "escaped", "remote"]
)
def test_reference_to_a_different_id(
    pki: PkiLayout, school: WsSigner, verifier: WsVerifier, target: str
) -> None:
    data, _ = _request(school)

    def redirect(root: Any) -> None:
        ref = _reference_to(root, root.find(f"{SOAP}Body"))
        uri = {
            "token": "#" + _security(root).find(f"{WSSE}BinarySecurityToken").get(WSU_ID),
            "nowhere": "#id-does-not-exist",
            "whole-document": "",
            "xpointer": "#xpointer(/)",
            "escaped": "#" + root.find(f"{SOAP}Body").get(WSU_ID).replace("-", "%2D"),
            "remote": "https://evil.example.invalid/doc.xml#"
            + root.find(f"{SOAP}Body").get(WSU_ID),
        }[target]
        ref.set("URI", uri)
        _resign(root, _private_key(pki, "vo"))

    _rejected(lambda: _verify(verifier, _mutate(data, redirect)), "WSS-REFERENCE")


@pytest.mark.parametrize("part", ["Action", "To", "MessageID", "From", "ReplyTo"])
def test_an_addressing_header_left_unsigned(
    pki: PkiLayout, school: WsSigner, verifier: WsVerifier, part: str
) -> None:
    """Edukoppeling: every WS-Addressing header is signed; a validly signed message that leaves
    one out is still refused."""
    data, _ = _request(school)

    def unsign(root: Any) -> None:
        _signed_info(root).remove(_reference_to(root, root.find(f"{SOAP}Header/{WSA}{part}")))
        _resign(root, _private_key(pki, "vo"))

    error = _rejected(lambda: _verify(verifier, _mutate(data, unsign)), "WSS-REFERENCE")
    assert part in str(error)


def test_timestamp_left_unsigned(pki: PkiLayout, school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)

    def unsign(root: Any) -> None:
        _signed_info(root).remove(_reference_to(root, _security(root).find(f"{WSU}Timestamp")))
        _resign(root, _private_key(pki, "vo"))

    _rejected(lambda: _verify(verifier, _mutate(data, unsign)), "WSS-REFERENCE")


def test_addressing_header_added_after_signing(school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)
    added = _mutate(
        data,
        lambda r: etree.SubElement(r.find(f"{SOAP}Header"), WSA + "RelatesTo").__setattr__(
            "text", "urn:uuid:injected"
        ),
    )
    _rejected(lambda: _verify(verifier, added), "WSS-REFERENCE")


def test_extra_non_addressing_header(school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)
    extra = _mutate(
        data, lambda r: etree.SubElement(r.find(f"{SOAP}Header"), "{urn:evil}Route").set("x", "1")
    )
    _rejected(lambda: _verify(verifier, extra), "WSS-HEADER", "0010")


@pytest.mark.parametrize(
    ("header", "fault"), [("To", "0005"), ("Action", "0006"), ("MessageID", "0007")]
)
def test_missing_addressing_header(
    school: WsSigner, verifier: WsVerifier, header: str, fault: str
) -> None:
    env = build_envelope(_dossier(), to="urn:x", action=ACTION, message_id=REQUEST_ID)
    h = env.find(f"{SOAP}Header")
    h.remove(h.find(WSA + header))
    school.sign(env, now=NOW)
    _rejected(lambda: _verify(verifier, canonical_bytes(env)), "WSS-ADDRESSING", fault)


def test_tampered_body_text(school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)
    _rejected(lambda: _verify(verifier, data.replace(BSN.encode(), b"999999990")), "WSS-INVALID")


def test_tampered_addressing_value(school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)
    _rejected(
        lambda: _verify(
            verifier, data.replace(ACTION.encode(), b"urn:overstap:status:1:MeldStatus")
        ),
        "WSS-INVALID",
    )


# --- algorithms and keys -------------------------------------------------------------------------


def test_sha1_digest(pki: PkiLayout, school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)

    def sha1(root: Any) -> None:
        for method in _signed_info(root).iter(f"{DS}DigestMethod"):
            method.set("Algorithm", SHA1)
        _resign(root, _private_key(pki, "vo"), digests=True)

    _rejected(lambda: _verify(verifier, _mutate(data, sha1)), "WSS-ALGORITHM")


def test_rsa_sha1_signature_method(pki: PkiLayout, school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)

    def weak(root: Any) -> None:
        _signed_info(root).find(f"{DS}SignatureMethod").set(
            "Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        )
        _resign(root, _private_key(pki, "vo"))

    _rejected(lambda: _verify(verifier, _mutate(data, weak)), "WSS-ALGORITHM")


def test_other_transform(pki: PkiLayout, school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)

    def xpath(root: Any) -> None:
        transforms = _signed_info(root).find(f"{DS}Reference/{DS}Transforms")
        etree.SubElement(
            transforms, DS + "Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"
        )
        _resign(root, _private_key(pki, "vo"))

    _rejected(lambda: _verify(verifier, _mutate(data, xpath)), "WSS-TRANSFORM")


def test_key_substitution_via_keyvalue(school: WsSigner, verifier: WsVerifier) -> None:
    """An attacker re-signs a forged Body with their own key and ships it as KeyValue."""
    data, _ = _request(school)
    own = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def substitute(root: Any) -> None:
        root.find(".//{urn:overstap:dossier:1}naam").text = "Forged"
        key_info = root.find(f".//{DS}KeyInfo")
        for child in list(key_info):
            key_info.remove(child)
        numbers = own.public_key().public_numbers()
        rsa_value = etree.SubElement(
            etree.SubElement(key_info, DS + "KeyValue"), DS + "RSAKeyValue"
        )
        etree.SubElement(rsa_value, DS + "Modulus").text = base64.b64encode(
            numbers.n.to_bytes(256, "big")
        ).decode()
        etree.SubElement(rsa_value, DS + "Exponent").text = "AQAB"
        _resign(root, own, digests=True)

    _rejected(lambda: _verify(verifier, _mutate(data, substitute)), "WSS-KEYINFO")


def test_token_with_a_certificate_from_another_ca(verifier: WsVerifier, tmp_path: Path) -> None:
    """Same name and OIN, issued by a CA we do not trust."""
    foreign = init_dev_pki(
        tmp_path / "foreign",
        [PartySpec(slug="vo", name="De Horizon", oin=SCHOOL, kind="vo")],
        PASS,
        now=NOW - timedelta(days=1),
    )
    data, _ = _request(_signer(foreign, "vo"))
    _rejected(lambda: _verify(verifier, data), "CERT-CHAIN")


@pytest.mark.parametrize(
    ("slug", "purpose", "rule"),
    [
        ("mbo", "sign", "CERT-OIN"),  # another party of the same CA: wrong OIN
        ("expired", "sign", "CERT-EXPIRED"),
        ("vo", "enc", "CERT-USAGE"),  # an encryption certificate does not sign
    ],
)
def test_certificate_rules(
    pki: PkiLayout, verifier: WsVerifier, slug: str, purpose: str, rule: str
) -> None:
    data, _ = _request(_signer(pki, slug, purpose))
    _rejected(lambda: _verify(verifier, data), rule)


# --- Timestamp (replay window) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (timedelta(minutes=-11), False),  # expired 6 minutes ago: beyond the 5 minutes of skew
        (timedelta(minutes=-9), True),  # expired 4 minutes ago: within the skew
        (timedelta(minutes=6), False),  # created in the future beyond the skew
        (timedelta(minutes=4), True),
    ],
)
def test_timestamp_window(
    school: WsSigner, verifier: WsVerifier, offset: timedelta, ok: bool
) -> None:
    data, _ = _request(school, now=NOW + offset)
    if ok:
        _verify(verifier, data)
    else:
        _rejected(lambda: _verify(verifier, data), "WSS-TIMESTAMP")


def test_timestamp_missing(pki: PkiLayout, school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)

    def drop(root: Any) -> None:
        timestamp = _security(root).find(f"{WSU}Timestamp")
        _signed_info(root).remove(_reference_to(root, timestamp))
        _security(root).remove(timestamp)
        _resign(root, _private_key(pki, "vo"))

    _rejected(lambda: _verify(verifier, _mutate(data, drop)), "WSS-TIMESTAMP")


def test_timestamp_without_expires_gets_max_age(
    pki: PkiLayout, school: WsSigner, verifier: WsVerifier
) -> None:
    """Expires is optional in WS-Security: then Created + max_age (5 minutes) + skew bounds it."""

    def no_expires(root: Any) -> None:
        timestamp = _security(root).find(f"{WSU}Timestamp")
        timestamp.remove(timestamp.find(f"{WSU}Expires"))
        _resign(root, _private_key(pki, "vo"), digests=True)

    recent, _ = _request(school, now=NOW - timedelta(minutes=9))
    _verify(verifier, _mutate(recent, no_expires))
    old, _ = _request(school, now=NOW - timedelta(minutes=11))
    _rejected(lambda: _verify(verifier, _mutate(old, no_expires)), "WSS-TIMESTAMP")


def test_inclusive_namespaces_prefix_list_is_accepted(
    pki: PkiLayout, school: WsSigner, verifier: WsVerifier
) -> None:
    """Other stacks (WSS4J) write ec:InclusiveNamespaces under the exclusive-c14n transform; the
    own digest check must canonicalise exactly as xmlsec does with it."""
    data, _ = _request(school)

    def with_prefixes(root: Any) -> None:
        for transform in _signed_info(root).iter(f"{DS}Transform"):
            etree.SubElement(
                transform, f"{{{EXC_C14N}}}InclusiveNamespaces", PrefixList="soap wsse"
            )
        _resign(root, _private_key(pki, "vo"), digests=True)

    mutated = _mutate(data, with_prefixes)
    assert _verify(verifier, mutated).message_id == REQUEST_ID
    # The digests really differ from the plain ones: the prefix list was applied by both sides.
    assert etree.fromstring(mutated).findtext(f".//{DS}DigestValue") != etree.fromstring(
        data
    ).findtext(f".//{DS}DigestValue")


# --- responses ------------------------------------------------------------------------------------


def test_wrong_relates_to(school: WsSigner, mbo: WsSigner, verifier: WsVerifier) -> None:
    _, value = _request(school)
    data = _response(mbo, value, relates_to="urn:uuid:some-other-request")
    _rejected(
        lambda: verifier.verify(
            data, expected_oin=MBO, require_confirmation=value, expected_relates_to=REQUEST_ID
        ),
        "WSS-RELATES-TO",
        "0011",
    )


def test_missing_relates_to(school: WsSigner, mbo: WsSigner, verifier: WsVerifier) -> None:
    _, value = _request(school)
    env = build_envelope(_dossier(), to="urn:x", action=ACTION, message_id=RESPONSE_ID)
    mbo.sign(env, now=NOW, confirm=value)
    _rejected(
        lambda: verifier.verify(
            canonical_bytes(env), expected_oin=MBO, expected_relates_to=REQUEST_ID
        ),
        "WSS-ADDRESSING",
        "0008",
    )


def test_missing_signature_confirmation(
    school: WsSigner, mbo: WsSigner, verifier: WsVerifier
) -> None:
    _, value = _request(school)
    data = _response(mbo, None)
    _rejected(
        lambda: verifier.verify(
            data, expected_oin=MBO, require_confirmation=value, expected_relates_to=REQUEST_ID
        ),
        "WSS-CONFIRMATION",
    )


def test_incorrect_signature_confirmation(
    school: WsSigner, mbo: WsSigner, verifier: WsVerifier
) -> None:
    """A confirmation of some other request (e.g. a replayed response) is refused."""
    _, value = _request(school)
    _, other_value = _request(school, now=NOW + timedelta(seconds=1))
    assert value != other_value
    for echoed in (other_value, "", "é" + value[1:]):  # non-ASCII: a refusal, not a TypeError
        data = _response(mbo, echoed)
        with pytest.raises(WsSecurityRejected) as exc:
            verifier.verify(
                data, expected_oin=MBO, require_confirmation=value, expected_relates_to=REQUEST_ID
            )
        assert exc.value.rule == "WSS-CONFIRMATION"


def test_unsigned_signature_confirmation(
    pki: PkiLayout, school: WsSigner, mbo: WsSigner, verifier: WsVerifier
) -> None:
    _, value = _request(school)

    def unsign(root: Any) -> None:
        confirmation = _security(root).find(f"{WSSE11}SignatureConfirmation")
        _signed_info(root).remove(_reference_to(root, confirmation))
        _resign(root, _private_key(pki, "mbo"))

    data = _mutate(_response(mbo, value), unsign)
    _rejected(
        lambda: verifier.verify(
            data, expected_oin=MBO, require_confirmation=value, expected_relates_to=REQUEST_ID
        ),
        "WSS-REFERENCE",
    )


# --- envelope ---------------------------------------------------------------------------------------


def test_envelope_shape_and_encoding(school: WsSigner, verifier: WsVerifier) -> None:
    data, _ = _request(school)
    two_children = _mutate(data, lambda r: etree.SubElement(r.find(f"{SOAP}Body"), "{urn:x}second"))
    _rejected(lambda: _verify(verifier, two_children), "WSS-ENVELOPE", "0001")
    latin1 = data.replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'", 1)
    _rejected(lambda: _verify(verifier, latin1), "XML-ENCODING", "0009")
    doctype = data.replace(b"?>\n", b'?>\n<!DOCTYPE x [<!ENTITY e "e">]>\n', 1)
    _rejected(lambda: _verify(verifier, doctype), "XML-DTD", "0001")


def test_for_record_keeps_the_fault_code() -> None:
    error = WsSecurityRejected("x", rule="WSS-HEADER", fault_code="0010").for_record("msg-1")
    assert (error.rule, error.fault_code, error.record) == ("WSS-HEADER", "0010", "msg-1")


# --- independent check ----------------------------------------------------------------------------


def _xmlsec1_id_args() -> list[str]:
    """xmlsec1 knows no wsu:Id: declare the Id attribute of every signed element type."""
    nodes = [f"{SOAP_NS}:Body", f"{WSU_NS}:Timestamp", f"{WSSE11_NS}:SignatureConfirmation"]
    nodes += [
        f"{WSA_NS}:{n}" for n in ("To", "From", "ReplyTo", "Action", "MessageID", "RelatesTo")
    ]
    return [arg for node in nodes for arg in ("--id-attr:Id", node)]


def test_xmlsec1_verifies_what_we_sign(
    school: WsSigner, mbo: WsSigner, pki: PkiLayout, xmlsec1_bin: str, tmp_path: Path
) -> None:
    """Debian's xmlsec1 verifies our request and response.

    xmlsec1 does not read a wsse:SecurityTokenReference, so it cannot take the key from the
    BinarySecurityToken. Two runs cover that: (1) the message as sent, with the signer's
    certificate given as `--pubkey-cert-pem` (checks SignedInfo and every reference, not the
    chain); (2) the same message with the unsigned KeyInfo swapped for an X509Data holding the
    token's certificate, verified with `--enabled-key-data x509` and only our CAs as
    `--trusted-pem` (checks the chain as well; KeyInfo is not covered by the signature, so the
    swap leaves what was signed untouched).
    """
    _, request_value = _request(school)
    messages = {
        "request": (_request(school)[0], pki.cert_path("vo", "sign")),
        "response": (_response(mbo, request_value), pki.cert_path("mbo", "sign")),
    }
    trusted = [a for p in pki.trusted_pem_paths for a in ("--trusted-pem", str(p))]
    base = [xmlsec1_bin, "--verify", *_xmlsec1_id_args()]
    for name, (data, cert) in messages.items():
        as_sent = tmp_path / f"{name}.xml"
        as_sent.write_bytes(data)
        run = subprocess.run(
            [*base, "--pubkey-cert-pem", str(cert), str(as_sent)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "OK" in run.stdout + run.stderr

        def x509_keyinfo(root: Any) -> None:
            token = _security(root).find(f"{WSSE}BinarySecurityToken")
            key_info = root.find(f".//{DS}KeyInfo")
            for child in list(key_info):
                key_info.remove(child)
            x509_data = etree.SubElement(key_info, DS + "X509Data")
            etree.SubElement(x509_data, DS + "X509Certificate").text = token.text

        with_x509 = tmp_path / f"{name}-x509.xml"
        with_x509.write_bytes(_mutate(data, x509_keyinfo))
        args = [*base, "--enabled-key-data", "x509", *trusted]
        run = subprocess.run(
            [*args, "--verification-gmt-time", NOW.strftime("%Y-%m-%d %H:%M:%S"), str(with_x509)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        tampered = tmp_path / f"{name}-tampered.xml"
        tampered.write_bytes(with_x509.read_bytes().replace(b"urn:overstap", b"urn:overstaq", 1))
        bad = subprocess.run(
            [*args, "--verification-gmt-time", NOW.strftime("%Y-%m-%d %H:%M:%S"), str(tampered)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode != 0


def test_copy_of_a_verified_tree_is_independent(school: WsSigner, verifier: WsVerifier) -> None:
    """Verifying the same parsed tree twice works (ids registered once per document)."""
    from overstap.xml.safe import parse_untrusted

    data, _ = _request(school)
    root = parse_untrusted(data)
    verifier.verify(root, expected_oin=SCHOOL)
    verifier.verify(copy.deepcopy(root), expected_oin=SCHOOL)
    verifier.verify(root, expected_oin=SCHOOL)


def test_signed_dossier_in_the_body(pki: PkiLayout, school: WsSigner, verifier: WsVerifier) -> None:
    """A dossier carries its own enveloped signature (ADR 4, 6): it is payload, not a second
    WS-Security signature, and it still verifies on its own once the body child is copied out."""
    from overstap.xml.dsig import Signer, Verifier

    dsig_signer = Signer.from_files(
        pki.key_path("vo", "sign"), pki.cert_path("vo", "sign"), PASS, chain=[pki.issuing_cert_path]
    )
    env = build_envelope(
        dsig_signer.sign(_dossier()), to="urn:x", action=ACTION, message_id=REQUEST_ID
    )
    school.sign(env, now=NOW)
    msg = _verify(verifier, canonical_bytes(env))
    dsig_verifier = Verifier(TrustStore.from_pem_file(pki.trust_bundle_path), clock=lambda: NOW)
    dossier = dsig_verifier.verify(copy.deepcopy(msg.body_child), expected_oin=SCHOOL)
    assert dossier.signer.oin == SCHOOL
    # A second signature in the Header is still refused.
    two = _mutate(
        canonical_bytes(env),
        lambda r: r.find(f"{SOAP}Header/{WSA}To").append(
            copy.deepcopy(r.find(f".//{DS}Signature"))
        ),
    )
    _rejected(lambda: _verify(verifier, two), "WSS-STRUCTURE")


def test_unknown_element_in_the_security_header(school: WsSigner, verifier: WsVerifier) -> None:
    """Nothing unsigned rides along in wsse:Security (a UsernameToken, an unsigned assertion)."""
    data, _ = _request(school)
    extra = _mutate(
        data,
        lambda r: etree.SubElement(
            etree.SubElement(_security(r), WSSE + "UsernameToken"), WSSE + "Username"
        ).__setattr__("text", "admin"),
    )
    _rejected(lambda: _verify(verifier, extra), "WSS-STRUCTURE")
    second_token = _mutate(
        data,
        lambda r: _security(r).insert(
            1, copy.deepcopy(_security(r).find(f"{WSSE}BinarySecurityToken"))
        ),
    )
    # The copy carries the same wsu:Id, so it is caught as a duplicate even before the count.
    _rejected(lambda: _verify(verifier, second_token), "WSS-DUPLICATE-ID")


def _move_signature_into_reply_to(root: Any) -> None:
    signature = root.find(f".//{DS}Signature")
    root.find(f"{SOAP}Header/{WSA}ReplyTo").append(signature)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (_move_signature_into_reply_to, "WSS-WRAPPING"),
        (lambda r: _security(r).set(SOAP + "actor", "urn:some-other-node"), "WSS-STRUCTURE"),
        (
            lambda r: r.find(f"{SOAP}Header").append(copy.deepcopy(_security(r))),
            "WSS-STRUCTURE",  # two Security headers: which one counts is not ours to guess
        ),
        (lambda r: _signed_info(r).find(f"{DS}Reference").set("Type", "urn:x"), "WSS-REFERENCE"),
        (
            lambda r: (
                _signed_info(r)
                .find(f"{DS}CanonicalizationMethod")
                .set("Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
            ),
            "WSS-ALGORITHM",
        ),
    ],
)
def test_structure_rules(
    school: WsSigner, verifier: WsVerifier, change: Callable[[Any], None], rule: str
) -> None:
    data, _ = _request(school)
    _rejected(lambda: _verify(verifier, _mutate(data, change)), rule)


def test_signer_and_verifier_are_shared_between_threads(
    school: WsSigner, verifier: WsVerifier
) -> None:
    """One signer and one verifier per process serve every worker thread (keys loaded once)."""
    from concurrent.futures import ThreadPoolExecutor

    def round_trip(i: int) -> str:
        env = build_envelope(_dossier(), to="urn:x", action=ACTION, message_id=f"urn:m:{i}")
        school.sign(env, now=NOW)
        return _verify(verifier, canonical_bytes(env)).message_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(round_trip, range(80)))
    assert ids == [f"urn:m:{i}" for i in range(80)]
