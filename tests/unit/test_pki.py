"""The development PKI: layout, idempotency, certificate shape, encrypted keys, expiry."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from overstap.domain.identifiers import BrinVestiging, Oin
from overstap.errors import ConfigurationError
from overstap.pki import (
    PURPOSES,
    PartySpec,
    PkiLayout,
    Purpose,
    certificate_status,
    init_dev_pki,
    load_certificate,
    load_certificates,
    load_private_key,
    passphrase_from,
    require_valid,
    required_oin,
)

PASSPHRASE = b"unit-test passphrase, long enough"
LONG_NAME = "Stichting Regionaal Opleidingencentrum voor Beroepsonderwijs en Volwasseneneducatie"
HUB = PartySpec("hub", "Overstap Hub", Oin("00000099000000000001"), "hub", ("hub.overstap.test",))
VO = PartySpec(
    "vo-12AB00", "Het Stedelijk Lyceum", Oin.for_brin(BrinVestiging.parse("12AB00")), "vo"
)
MBO = PartySpec("mbo-25XY", LONG_NAME, Oin("00000007253435000000"), "mbo")
PARTIES = (HUB, VO, MBO)

# Key usages per purpose as PKIoverheid services certificates have them.
EXPECTED_USAGE = {
    "sign": {"digital_signature", "content_commitment"},
    "enc": {"key_encipherment", "data_encipherment"},
    "tls": {"digital_signature", "key_encipherment"},
}
USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


@dataclass(frozen=True)
class Pki:
    layout: PkiLayout
    now: datetime


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One PKI for the read-only tests (RSA key generation is the expensive part)."""
    now = datetime.now(UTC)
    layout = init_dev_pki(tmp_path_factory.mktemp("pki") / "pki", PARTIES, PASSPHRASE, now=now)
    return Pki(layout, now)


# An injected moment far from the real clock, to see that `now` and `valid_days` are honoured.
PAST = datetime(2020, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def past_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    root = tmp_path_factory.mktemp("past-pki") / "pki"
    return init_dev_pki(root, [HUB], PASSPHRASE, valid_days=30, now=PAST)


@pytest.fixture
def pki_copy(pki: Pki, tmp_path: Path) -> PkiLayout:
    """A private copy for tests that run init again (copy2 keeps mtimes and modes)."""
    target = tmp_path / "pki"
    shutil.copytree(pki.layout.root, target)
    return PkiLayout(target)


def cert(layout: PkiLayout, slug: str, purpose: Purpose) -> x509.Certificate:
    return load_certificate(layout.cert_path(slug, purpose))


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Inode, mtime and bytes of every file: a rewrite changes the inode (os.replace)."""
    result = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            result[str(path.relative_to(root))] = (st.st_ino, st.st_mtime_ns, path.read_bytes())
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- layout -------------------------------------------------------------------------------------


def test_layout_has_ca_party_files_and_gitignore(pki: Pki) -> None:
    layout = pki.layout
    root = layout.root
    for name in ("root.crt", "root.key.pem", "issuing.crt", "issuing.key.pem", "trust.pem"):
        assert (root / "ca" / name).is_file(), name
    for party in PARTIES:
        for purpose in PURPOSES:
            for path in (
                layout.cert_path(party.slug, purpose),
                layout.key_path(party.slug, purpose),
                layout.p12_path(party.slug, purpose),
            ):
                assert path.is_file() and path.parent == root / "parties" / party.slug
    assert layout.ca_cert_path == root / "ca" / "root.crt"
    assert layout.trust_bundle_path == root / "ca" / "trust.pem"
    assert "*" in (root / ".gitignore").read_text().splitlines()


def test_private_keys_and_p12_are_mode_0600(pki: Pki) -> None:
    layout = pki.layout
    secret_files = [layout.ca_key_path, layout.issuing_key_path]
    for party in PARTIES:
        for purpose in PURPOSES:
            secret_files += [
                layout.key_path(party.slug, purpose),
                layout.p12_path(party.slug, purpose),
            ]
    for path in secret_files:
        assert mode(path) == 0o600, path
    # No temp file of an atomic write is left behind.
    assert not list(layout.root.rglob("*.tmp"))


def test_trust_bundle_is_root_then_issuing(pki: Pki) -> None:
    bundle = load_certificates(pki.layout.trust_bundle_path)
    assert [c.subject for c in bundle] == [
        load_certificate(pki.layout.ca_cert_path).subject,
        load_certificate(pki.layout.issuing_cert_path).subject,
    ]
    assert pki.layout.trusted_pem_paths == (pki.layout.ca_cert_path, pki.layout.issuing_cert_path)


def test_layout_refuses_slugs_that_leave_the_directory() -> None:
    layout = PkiLayout(Path("/nowhere"))
    with pytest.raises(ValueError, match="slug"):
        layout.cert_path("../ca", "sign")
    with pytest.raises(ValueError, match="purpose"):
        layout.cert_path("hub", "auth")  # type: ignore[arg-type]


# --- certificate shape ------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", PURPOSES)
def test_oin_sits_in_subject_serial_number(pki: Pki, purpose: Purpose) -> None:
    for party in (HUB, VO):
        c = cert(pki.layout, party.slug, purpose)
        attrs = {a.oid: a.value for a in c.subject}
        assert attrs[NameOID.SERIAL_NUMBER] == party.oin.value
        assert attrs[NameOID.COUNTRY_NAME] == "NL"
        assert attrs[NameOID.ORGANIZATION_NAME] == party.name
        assert attrs[NameOID.COMMON_NAME] == f"{party.name} {purpose}"
        assert required_oin(c) == party.oin


def test_long_names_are_shortened_to_the_x509_limit(pki: Pki) -> None:
    c = cert(pki.layout, MBO.slug, "sign")
    common_name = str(c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    organisation = str(c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value)
    assert len(common_name) <= 64 and common_name.endswith(" sign")
    assert LONG_NAME.startswith(common_name.removesuffix(" sign"))
    assert len(organisation) <= 64 and LONG_NAME.startswith(str(organisation))
    assert required_oin(c) == MBO.oin


@pytest.mark.parametrize("purpose", PURPOSES)
def test_key_usage_per_purpose(pki: Pki, purpose: Purpose) -> None:
    c = cert(pki.layout, HUB.slug, purpose)
    ku = c.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert {flag for flag in USAGE_FLAGS if getattr(ku.value, flag)} == EXPECTED_USAGE[purpose]
    bc = c.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    if purpose == "tls":
        eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    else:
        with pytest.raises(x509.ExtensionNotFound):
            c.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_tls_certificate_names_localhost_and_extra_dns(pki: Pki) -> None:
    san = cert(pki.layout, HUB.slug, "tls").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost", "hub.overstap.test"]
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    plain = cert(pki.layout, VO.slug, "tls").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert plain.value.get_values_for_type(x509.DNSName) == ["localhost"]


def test_ca_certificates_are_shaped_like_pkioverheid(pki: Pki) -> None:
    root = load_certificate(pki.layout.ca_cert_path)
    issuing = load_certificate(pki.layout.issuing_cert_path)
    for c, common_name, path_length in (
        (root, "Overstap Dev Root CA", 1),
        (issuing, "Overstap Dev Organisatie Services CA", 0),
    ):
        assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == common_name
        bc = c.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == path_length
        ku = c.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical
        assert {flag for flag in USAGE_FLAGS if getattr(ku.value, flag)} == {
            "key_cert_sign",
            "crl_sign",
        }
        key = c.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072


@pytest.mark.parametrize("purpose", PURPOSES)
def test_party_keys_are_rsa_2048_signed_with_sha256(pki: Pki, purpose: Purpose) -> None:
    c = cert(pki.layout, VO.slug, purpose)
    key = c.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    assert isinstance(c.signature_hash_algorithm, hashes.SHA256)


def test_validity_honours_injected_now_and_days(past_pki: PkiLayout) -> None:
    c = cert(past_pki, HUB.slug, "sign")
    assert c.not_valid_before_utc == PAST - timedelta(minutes=5)
    assert c.not_valid_after_utc == PAST + timedelta(days=30)


# --- chain ------------------------------------------------------------------------------------


def test_chain_issuer_names_key_ids_and_signatures(pki: Pki) -> None:
    root = load_certificate(pki.layout.ca_cert_path)
    issuing = load_certificate(pki.layout.issuing_cert_path)
    root.verify_directly_issued_by(root)
    issuing.verify_directly_issued_by(root)
    assert issuing.issuer == root.subject

    def ski(c: x509.Certificate) -> bytes:
        return c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest

    def aki(c: x509.Certificate) -> bytes | None:
        return c.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier

    assert aki(issuing) == ski(root)
    for party in PARTIES:
        for purpose in PURPOSES:
            c = cert(pki.layout, party.slug, purpose)
            assert c.issuer == issuing.subject
            c.verify_directly_issued_by(issuing)
            assert aki(c) == ski(issuing)
    # The check above has teeth: a party certificate is not signed by the root itself.
    with pytest.raises((ValueError, InvalidSignature)):
        cert(pki.layout, HUB.slug, "tls").verify_directly_issued_by(root)


def test_tls_certificate_passes_an_rfc5280_path_validator(pki: Pki) -> None:
    root = load_certificate(pki.layout.ca_cert_path)
    issuing = load_certificate(pki.layout.issuing_cert_path)
    tls = cert(pki.layout, HUB.slug, "tls")
    builder = PolicyBuilder().store(Store([root])).time(pki.now)
    builder.build_client_verifier().verify(tls, [issuing])
    for name in ("localhost", "hub.overstap.test"):
        builder.build_server_verifier(x509.DNSName(name)).verify(tls, [issuing])
    with pytest.raises(VerificationError):
        builder.build_server_verifier(x509.DNSName("evil.example")).verify(tls, [issuing])
    with pytest.raises(VerificationError):  # without the issuing CA there is no path
        builder.build_client_verifier().verify(tls, [])


# --- keys -------------------------------------------------------------------------------------


def test_private_keys_are_encrypted_pkcs8(pki: Pki) -> None:
    path = pki.layout.key_path(HUB.slug, "sign")
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(data, password=None)
    key = load_private_key(path, PASSPHRASE)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert key.public_key().public_bytes(der, spki) == cert(
        pki.layout, HUB.slug, "sign"
    ).public_key().public_bytes(der, spki)


def test_wrong_passphrase_names_the_file_not_the_secret(pki: Pki) -> None:
    path = pki.layout.key_path(VO.slug, "enc")
    with pytest.raises(ConfigurationError) as info:
        load_private_key(path, b"not the passphrase at all")
    message = str(info.value)
    assert str(path) in message and "wrong passphrase" in message
    assert "not the passphrase" not in message and PASSPHRASE.decode() not in message
    assert info.value.__suppress_context__  # no parser traceback chained to it


def test_load_errors_name_file_and_reason(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.crt"
    with pytest.raises(ConfigurationError, match=r"missing\.crt: file not found"):
        load_certificate(missing)
    with pytest.raises(ConfigurationError, match=r"not a PEM or DER X\.509 certificate"):
        load_certificate(pki.layout.key_path(HUB.slug, "sign"))
    with pytest.raises(ConfigurationError, match=r"missing\.key\.pem: file not found"):
        load_private_key(tmp_path / "missing.key.pem", PASSPHRASE)
    with pytest.raises(ConfigurationError, match="is not a PEM private key"):
        load_private_key(pki.layout.cert_path(HUB.slug, "sign"), PASSPHRASE)


def test_unencrypted_private_key_is_refused(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "plain.key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigurationError, match="is not encrypted"):
        load_private_key(path, PASSPHRASE)


def test_p12_holds_key_certificate_and_chain(pki: Pki) -> None:
    layout = pki.layout
    bundle = pkcs12.load_pkcs12(layout.p12_path(MBO.slug, "tls").read_bytes(), PASSPHRASE)
    assert bundle.cert is not None and bundle.key is not None
    assert bundle.cert.certificate == cert(layout, MBO.slug, "tls")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert bundle.key.public_key().public_bytes(
        der, spki
    ) == bundle.cert.certificate.public_key().public_bytes(der, spki)
    assert [c.certificate for c in bundle.additional_certs] == [
        load_certificate(layout.issuing_cert_path),
        load_certificate(layout.ca_cert_path),
    ]
    with pytest.raises(ValueError, match="password"):
        pkcs12.load_pkcs12(layout.p12_path(MBO.slug, "tls").read_bytes(), b"wrong passphrase")


# --- idempotency ------------------------------------------------------------------------------


def test_second_init_writes_nothing(pki_copy: PkiLayout) -> None:
    before = snapshot(pki_copy.root)
    init_dev_pki(pki_copy.root, PARTIES, PASSPHRASE)
    assert snapshot(pki_copy.root) == before


def test_new_party_is_the_only_thing_issued(pki_copy: PkiLayout) -> None:
    before = snapshot(pki_copy.root)
    gemeente = PartySpec("gm-GM0363", "Gemeente Amsterdam", Oin("00000001002564440000"), "gemeente")
    init_dev_pki(pki_copy.root, [*PARTIES, gemeente], PASSPHRASE)
    after = snapshot(pki_copy.root)
    added = set(after) - set(before)
    assert added == {
        f"parties/gm-GM0363/{purpose}{suffix}"
        for purpose in PURPOSES
        for suffix in (".crt", ".key.pem", ".p12")
    }
    assert {name: after[name] for name in before} == before
    assert required_oin(cert(pki_copy, "gm-GM0363", "enc")) == gemeente.oin


def test_lost_p12_is_rebuilt_with_the_same_key(pki_copy: PkiLayout) -> None:
    pki_copy.p12_path(VO.slug, "enc").unlink()
    key_before = pki_copy.key_path(VO.slug, "enc").read_bytes()
    cert_before = pki_copy.cert_path(VO.slug, "enc").read_bytes()
    init_dev_pki(pki_copy.root, PARTIES, PASSPHRASE)
    bundle = pkcs12.load_pkcs12(pki_copy.p12_path(VO.slug, "enc").read_bytes(), PASSPHRASE)
    assert bundle.cert is not None
    assert bundle.cert.certificate == cert(pki_copy, VO.slug, "enc")
    assert [c.certificate for c in bundle.additional_certs] == [
        load_certificate(pki_copy.issuing_cert_path),
        load_certificate(pki_copy.ca_cert_path),
    ]
    assert pki_copy.key_path(VO.slug, "enc").read_bytes() == key_before
    assert pki_copy.cert_path(VO.slug, "enc").read_bytes() == cert_before
    assert mode(pki_copy.p12_path(VO.slug, "enc")) == 0o600


def test_missing_certificate_is_reissued_alone(pki_copy: PkiLayout) -> None:
    old = cert(pki_copy, VO.slug, "sign")
    pki_copy.cert_path(VO.slug, "sign").unlink()
    before = snapshot(pki_copy.root)
    init_dev_pki(pki_copy.root, PARTIES, PASSPHRASE)
    after = snapshot(pki_copy.root)
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed == {f"parties/{VO.slug}/sign{s}" for s in (".crt", ".key.pem", ".p12")}
    assert cert(pki_copy, VO.slug, "sign").serial_number != old.serial_number


def test_changed_oin_is_refused_not_silently_kept(pki_copy: PkiLayout) -> None:
    moved = PartySpec(VO.slug, VO.name, Oin("00000099000000000777"), "vo")
    with pytest.raises(
        ConfigurationError, match=r"carries OIN \d{20}, the party has 00000099000000000777"
    ):
        init_dev_pki(pki_copy.root, [HUB, moved], PASSPHRASE)


def test_reinit_with_wrong_passphrase_names_the_ca_key(pki_copy: PkiLayout) -> None:
    with pytest.raises(ConfigurationError, match=r"issuing\.key\.pem: wrong passphrase"):
        init_dev_pki(pki_copy.root, PARTIES, b"a different passphrase")


def test_certificates_of_another_ca_are_refused(pki_copy: PkiLayout, past_pki: PkiLayout) -> None:
    shutil.copy2(past_pki.cert_path(HUB.slug, "tls"), pki_copy.cert_path(HUB.slug, "tls"))
    with pytest.raises(ConfigurationError, match="issued by another CA"):
        init_dev_pki(pki_copy.root, PARTIES, PASSPHRASE)


def test_duplicate_slugs_and_bad_specs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="listed twice"):
        init_dev_pki(tmp_path / "pki", [HUB, HUB], PASSPHRASE)
    with pytest.raises(ConfigurationError, match="slug"):
        PartySpec("../etc", "X", HUB.oin, "vo")
    with pytest.raises(ConfigurationError, match="kind"):
        PartySpec("x", "X", HUB.oin, "school")
    with pytest.raises(ValueError, match="timezone-aware"):
        init_dev_pki(tmp_path / "pki", [], PASSPHRASE, now=datetime(2020, 1, 1))


def test_unusable_pki_directory_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError, match=r"PKI directory .*a-file/pki: .*Not a directory"):
        init_dev_pki(blocker / "pki", [HUB], PASSPHRASE)
    with pytest.raises(ConfigurationError, match="Not a directory"):
        passphrase_from(blocker / "pki", {})


# --- expiry -------------------------------------------------------------------------------------


def test_certificate_status_ok_expiring_expired(pki: Pki) -> None:
    tls_path = pki.layout.cert_path(HUB.slug, "tls")
    end = load_certificate(tls_path).not_valid_after_utc

    def state_at(moment: datetime, warn_days: int = 30) -> tuple[str, int]:
        statuses = {s.path: s for s in certificate_status(pki.layout.root, moment, warn_days)}
        return statuses[tls_path].state, statuses[tls_path].days_left

    assert state_at(end - timedelta(days=60)) == ("ok", 60)
    assert state_at(end - timedelta(days=10)) == ("expiring", 10)
    assert state_at(end - timedelta(days=60), warn_days=90) == ("expiring", 60)
    assert state_at(end + timedelta(days=1)) == ("expired", -1)


def test_certificate_status_lists_every_certificate(pki: Pki) -> None:
    statuses = certificate_status(pki.layout.root, pki.now)
    assert len(statuses) == 2 + 3 * len(PARTIES)
    assert all(s.state == "ok" for s in statuses)
    by_purpose = {(s.oin, s.purpose) for s in statuses}
    assert (None, "root-ca") in by_purpose and (None, "issuing-ca") in by_purpose
    for party in PARTIES:
        for purpose in PURPOSES:
            assert (party.oin, purpose) in by_purpose
    hub_tls = next(s for s in statuses if s.path == pki.layout.cert_path(HUB.slug, "tls"))
    assert "serialNumber=00000099000000000001" in hub_tls.subject
    assert hub_tls.days_left in (364, 365)


def test_certificate_status_of_an_empty_directory(tmp_path: Path) -> None:
    assert certificate_status(tmp_path / "nothing") == []


def test_require_valid_refuses_expired_and_names_the_date(past_pki: PkiLayout) -> None:
    c = cert(past_pki, HUB.slug, "sign")
    require_valid(c, PAST + timedelta(days=29))  # still valid: no exception
    with pytest.raises(ConfigurationError, match="expired on 2020-03-31") as info:
        require_valid(c)
    assert "CN=Overstap Hub sign" in str(info.value)
    with pytest.raises(ConfigurationError, match="not valid before 2020-03-01"):
        require_valid(c, PAST - timedelta(hours=1))


def test_status_of_the_past_pki_is_expired_now(past_pki: PkiLayout) -> None:
    statuses = {s.purpose: s for s in certificate_status(past_pki.root)}
    assert {statuses[p].state for p in PURPOSES} == {"expired"}
    assert all(statuses[p].days_left < -30 for p in PURPOSES)
    # The CA outlives its parties by far: ten years from the injected moment.
    assert statuses["root-ca"].not_after == PAST + timedelta(days=3650)


# --- passphrase ---------------------------------------------------------------------------------


def test_passphrase_from_environment_writes_no_file(tmp_path: Path) -> None:
    root = tmp_path / "pki"
    value = passphrase_from(root, {"OVERSTAP_KEY_PASSPHRASE": "from the environment, long"})
    assert value == b"from the environment, long"
    assert not (root / ".passphrase").exists()


def test_passphrase_from_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "key_passphrase"
    secret.write_text("docker secret passphrase\n")
    env = {"OVERSTAP_KEY_PASSPHRASE_FILE": str(secret)}
    assert passphrase_from(tmp_path / "pki", env) == b"docker secret passphrase"


def test_short_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="OVERSTAP_KEY_PASSPHRASE: passphrase is shorter"):
        passphrase_from(tmp_path, {"OVERSTAP_KEY_PASSPHRASE": "secret"})


def test_generated_passphrase_is_kept_private_and_reused(tmp_path: Path) -> None:
    first = passphrase_from(tmp_path / "a", {})
    path = tmp_path / "a" / ".passphrase"
    assert mode(path) == 0o600
    assert len(first) >= 32
    assert passphrase_from(tmp_path / "a", {}) == first
    assert passphrase_from(tmp_path / "b", {}) != first
    assert "*" in (tmp_path / "a" / ".gitignore").read_text().splitlines()


def test_generated_passphrase_readable_by_others_is_refused(tmp_path: Path) -> None:
    passphrase_from(tmp_path, {})
    os.chmod(tmp_path / ".passphrase", 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        passphrase_from(tmp_path, {})
