"""`overstap xml validate` and `overstap xml verify` as a person runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from overstap.domain.identifiers import Brin, Oin
from overstap.pki import PartySpec, init_dev_pki
from overstap.xml.dsig import Signer, canonical_bytes
from overstap.xml.safe import parse_untrusted

OVERSTAP = str(Path(sys.executable).with_name("overstap"))
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xml" / "dossier.xml"
PASS = b"cli-test-passphrase-long"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(
        [OVERSTAP, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_validate_lists_every_violation_with_line_path_and_rule(tmp_path: Path) -> None:
    assert _run("xml", "validate", str(FIXTURE)).returncode == 0
    bad = tmp_path / "bad.xml"
    bad.write_bytes(FIXTURE.read_bytes().replace(b"<bsn>111222333", b"<bsn>11122233X"))
    out = _run("xml", "validate", str(bad))
    assert out.returncode == 1
    assert "/dossier/leerling/bsn" in out.stderr
    assert "SCHEMAV_CVC_PATTERN_VALID" in out.stderr
    assert "line 77" in out.stderr
    assert "11122233X" not in out.stderr  # values are redacted: it could have been a BSN


def test_validate_reports_profile_rules_of_a_schema_valid_dossier(tmp_path: Path) -> None:
    refused = tmp_path / "refused.xml"
    refused.write_bytes(FIXTURE.read_bytes().replace(b"<toestemming>Ja<", b"<toestemming>Nee<"))
    out = _run("xml", "validate", str(refused))
    assert out.returncode == 1
    assert "line 48 /dossier/inzage/toestemming VOMBO-TOESTEMMING" in out.stderr
    assert "SCHEMAV" not in out.stderr  # schema-valid: only the profile speaks
    assert "111222333" not in out.stderr

    warned = tmp_path / "warned.xml"
    warned.write_bytes(
        FIXTURE.read_bytes().replace(
            b"<bsn>111222333</bsn>", b"<onderwijsnummer>100000005</onderwijsnummer>"
        )
    )
    out = _run("xml", "validate", str(warned))
    assert out.returncode == 0, out.stderr
    assert "VOMBO-ID (warning)" in out.stderr
    assert "valid" in out.stdout


def test_validate_refuses_a_dtd(tmp_path: Path) -> None:
    evil = tmp_path / "evil.xml"
    evil.write_text(
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    )
    out = _run("xml", "validate", str(evil))
    assert out.returncode == 1
    assert "XML-DTD" in out.stderr
    assert "root:" not in out.stderr


def test_verify_signed_and_tampered(tmp_path: Path) -> None:
    school = Brin("12AB")
    layout = init_dev_pki(
        tmp_path / "pki",
        [PartySpec(slug="vo", name="De Horizon", oin=Oin.for_brin(school), kind="vo")],
        PASS,
    )
    signer = Signer.from_files(
        layout.key_path("vo", "sign"),
        layout.cert_path("vo", "sign"),
        PASS,
        chain=[layout.issuing_cert_path],
    )
    signed = tmp_path / "signed.xml"
    signed.write_bytes(canonical_bytes(signer.sign(parse_untrusted(FIXTURE.read_bytes()))))
    trust = str(layout.trust_bundle_path)
    ok = _run("xml", "verify", str(signed), "--trust", trust, "--oin", str(Oin.for_brin(school)))
    assert ok.returncode == 0, ok.stderr
    assert "signature OK" in ok.stdout
    wrong = _run("xml", "verify", str(signed), "--trust", trust, "--oin", "00000007999999000000")
    assert wrong.returncode == 1
    assert "CERT-OIN" in wrong.stderr
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(signed.read_bytes().replace(b"De Horizon", b"De Horizom", 1))
    bad = _run("xml", "verify", str(tampered), "--trust", trust)
    assert bad.returncode == 1
    assert "SIG-INVALID" in bad.stderr
