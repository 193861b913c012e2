"""Keyed pseudonyms and typed settings."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from overstap.audit.chain import AuditEvent
from overstap.audit.pseudonym import Pseudonymizer
from overstap.config import Settings
from overstap.domain.identifiers import Bsn, Onderwijsnummer
from overstap.errors import ConfigurationError

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
BSN = "111222333"


def _valid_onr() -> str:
    # Keep the fixture honest: compute an onderwijsnummer that passes, do not assume one.
    from overstap.domain.identifiers import elfproef_remainder

    for tail in range(10_000_000):
        cand = f"10{tail:07d}"
        if elfproef_remainder(cand) == 5:
            return cand
    raise AssertionError("no onderwijsnummer found")


def test_pseudonym_is_stable_keyed_and_not_a_plain_hash() -> None:
    p = Pseudonymizer(KEY_A)
    a = p.subject(Bsn(BSN))
    assert a == p.subject(Bsn(BSN))
    assert a.startswith("ps1_")
    assert a != Pseudonymizer(KEY_B).subject(Bsn(BSN))
    assert BSN not in a
    plain = hashlib.sha256(BSN.encode()).hexdigest()
    assert a[4:] not in plain


def test_bsn_and_onderwijsnummer_with_same_digits_differ() -> None:
    onr = _valid_onr()
    p = Pseudonymizer(KEY_A)
    assert p.subject(Onderwijsnummer(onr)) != Pseudonymizer(KEY_A).subject(Bsn(BSN))
    assert p.subject(Onderwijsnummer(onr)).startswith("ps1_")


def test_short_key_refused_and_repr_hides_it() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Pseudonymizer(b"short")
    assert KEY_A.hex() not in repr(Pseudonymizer(KEY_A))


def test_audit_event_refuses_a_bsn_anywhere() -> None:
    with pytest.raises(ValueError, match="personal number"):
        AuditEvent("t", "pulled", "student", BSN)
    with pytest.raises(ValueError, match="personal number"):
        AuditEvent("t", "pulled", "student", "ps1_x", detail={"note": f"nummer {BSN}"})
    with pytest.raises(ValueError, match="personal number"):
        AuditEvent("t", "pulled", "student", "ps1_x", detail={"n": _valid_onr()})
    # nine digits that fail the elfproef (a count, an order number) are fine
    AuditEvent("t", "pulled", "student", "ps1_x", detail={"n": "123456789"})


def test_settings_defaults_create_home_and_a_private_key(tmp_path: Path) -> None:
    s = Settings.from_env({"OVERSTAP_HOME": str(tmp_path / "h")})
    assert s.database_url == f"sqlite:///{tmp_path / 'h' / 'overstap.db'}"
    key_file = tmp_path / "h" / "pseudonym.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert len(s.pseudonym_key) == 32
    again = Settings.from_env({"OVERSTAP_HOME": str(tmp_path / "h")})
    assert again.pseudonym_key == s.pseudonym_key
    assert s.pseudonym_key.hex() not in repr(s)


def test_settings_from_env_and_file(tmp_path: Path) -> None:
    key = "ab" * 32
    s = Settings.from_env({"OVERSTAP_HOME": str(tmp_path), "OVERSTAP_PSEUDONYM_KEY": key})
    assert s.pseudonym_key == bytes.fromhex(key)
    f = tmp_path / "secret"
    f.write_text(key + "\n")
    s2 = Settings.from_env({"OVERSTAP_HOME": str(tmp_path), "OVERSTAP_PSEUDONYM_KEY_FILE": str(f)})
    assert s2.pseudonym_key == bytes.fromhex(key)


@pytest.mark.parametrize(
    ("value", "why"),
    [("zz", "not hexadecimal"), ("ab" * 8, "at least 32")],
)
def test_bad_pseudonym_key_names_the_setting(tmp_path: Path, value: str, why: str) -> None:
    with pytest.raises(ConfigurationError, match="OVERSTAP_PSEUDONYM_KEY") as exc:
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path), "OVERSTAP_PSEUDONYM_KEY": value})
    assert why in str(exc.value)
    assert value not in str(exc.value) or len(value) < 4


def test_missing_key_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="OVERSTAP_PSEUDONYM_KEY_FILE"):
        Settings.from_env(
            {"OVERSTAP_HOME": str(tmp_path), "OVERSTAP_PSEUDONYM_KEY_FILE": str(tmp_path / "nope")}
        )


def test_pseudonyms_never_trip_the_personal_number_guard() -> None:
    """Hex pseudonyms contain digit runs that pass the elfproef; they must still be accepted."""
    p = Pseudonymizer(KEY_A)
    from overstap.domain.identifiers import elfproef_remainder

    hits = 0
    for n in range(100000000, 100000000 + 20000 * 11, 11):
        s = f"{n:09d}"
        if elfproef_remainder(s) == 0:
            AuditEvent("t", "student.created", "student", p.subject(Bsn(s)))
            hits += 1
    assert hits > 1000
