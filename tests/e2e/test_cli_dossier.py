"""`overstap dossier build` as an administrator runs it, from a loaded synthetic region."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

OVERSTAP = str(Path(sys.executable).with_name("overstap"))
END_OF_YEAR = "2027-07-31"  # the region's school year is 2026-2027: every approval has happened


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVERSTAP_HOME": str(home), "COLUMNS": "250"}
    return subprocess.run(
        [OVERSTAP, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    home = tmp_path_factory.mktemp("hub")
    region = home / "region"
    for args in (
        ("region", "generate", "--students", "150", "--seed", "5", "--out", str(region)),
        ("certs", "init", "--region", str(region)),
        ("region", "load", str(region)),
    ):
        done = _run(home, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    lines = (region / "students.jsonl").read_text(encoding="utf-8").splitlines()
    return home, [json.loads(line) for line in lines]


def _pick(students: list[dict[str, object]], *, valid: bool) -> dict[str, object]:
    return next(
        s
        for s in students
        if s["scenario"]["applies_to"] and s["scenario"]["approval_valid"] is valid  # type: ignore[index]
    )


def test_build_writes_a_signed_dossier_that_independent_tools_verify(
    hub: tuple[Path, list[dict[str, object]]], tmp_path: Path, xmlsec1_bin: str
) -> None:
    home, students = hub
    student = _pick(students, valid=True)
    out = tmp_path / "dossier.xml"
    args = ("--student", str(student["leerlingid"]), "--school", str(student["school"]))
    done = _run(home, "dossier", "build", *args, "--out", str(out), "--today", END_OF_YEAR)
    assert done.returncode == 0, done.stderr
    assert "valid, signed" in done.stdout
    verified = _run(home, "xml", "verify", str(out), "--oin", "00000099000000000001")
    assert verified.returncode == 0, verified.stderr  # signed by the hub (ADR 6)
    checked = subprocess.run(
        [xmlsec1_bin, "--verify", "--enabled-key-data", "x509", "--trusted-pem",
         str(home / "pki" / "ca" / "root.crt"), str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    number = str(student["bsn"] or student["onderwijsnummer"])
    assert number.encode() in out.read_bytes()  # the dossier carries it (encrypted in transit)
    assert number not in done.stdout + done.stderr


def test_a_dossier_that_breaks_a_rule_is_not_written(
    hub: tuple[Path, list[dict[str, object]]], tmp_path: Path
) -> None:
    home, students = hub
    student = _pick(students, valid=False)
    out = tmp_path / "dossier.xml"
    args = ("--student", str(student["leerlingid"]), "--school", str(student["school"]))
    done = _run(home, "dossier", "build", *args, "--out", str(out), "--today", END_OF_YEAR)
    assert done.returncode == 1
    assert "VOMBO-" in done.stderr and "not written" in done.stderr
    assert not out.exists()
    for secret in (student["bsn"], student["onderwijsnummer"], student["achternaam"]):
        if secret:
            assert str(secret) not in done.stderr


def test_unknown_student_and_bad_date_are_clear_errors(
    hub: tuple[Path, list[dict[str, object]]], tmp_path: Path
) -> None:
    home, _ = hub
    out = tmp_path / "x.xml"
    missing = _run(home, "dossier", "build", "--student", "NOBODY", "--out", str(out))
    assert missing.returncode == 1 and "DOSSIER-NOT-FOUND" in missing.stderr
    bad = _run(home, "dossier", "build", "--student", "X", "--out", str(out), "--today", "1-4-2027")
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr
