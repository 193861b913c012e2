"""`overstap audit verify` as an operator runs it: a real process on a real SQLite file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from overstap.audit.chain import AuditEvent
from overstap.bootstrap import HubContext
from overstap.store.audit_log import AuditLog

OVERSTAP = str(Path(sys.executable).with_name("overstap"))


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVERSTAP_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [OVERSTAP, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_verify_ok_then_names_the_tampered_row(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    up = _run(home, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    ctx = HubContext.open({"OVERSTAP_HOME": str(home)})
    with ctx.engine.begin() as conn:
        AuditLog(conn).append_many(
            AuditEvent("test", "student.created", "student", f"ps1_{i:032x}") for i in range(6)
        )
    ctx.close()

    ok = _run(home, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "audit chain OK" in ok.stdout
    assert "6 records" in ok.stdout

    # The tamperer: plain SQL on the SQLite file, trigger out of the way first.
    db = sqlite3.connect(home / "overstap.db")
    db.execute("DROP TRIGGER audit_event_no_update")
    db.execute("UPDATE audit_event SET actor = 'someone else' WHERE seq = 4")
    db.commit()
    db.close()

    broken = _run(home, "audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN" in broken.stderr
    assert "record 4" in broken.stderr
    assert "altered" in broken.stderr


def test_configuration_error_is_one_clear_line(tmp_path: Path) -> None:
    env_home = tmp_path / "hub"
    env = {**os.environ, "OVERSTAP_HOME": str(env_home), "OVERSTAP_PSEUDONYM_KEY": "nothex"}
    out = subprocess.run(
        [OVERSTAP, "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "OVERSTAP_PSEUDONYM_KEY" in out.stderr
    assert "Traceback" not in out.stderr


def test_checkpoint_export_and_offline_verification(tmp_path: Path) -> None:
    """An operator signs the head, exports a range for an auditor, the auditor verifies it; a
    changed byte in the export is named."""
    from datetime import UTC, datetime

    home = tmp_path / "hub"
    assert _run(home, "db", "upgrade").returncode == 0
    assert _run(home, "certs", "init").returncode == 0
    ctx = HubContext.open({"OVERSTAP_HOME": str(home)})
    with ctx.engine.begin() as conn:
        AuditLog(conn).append_many(
            AuditEvent("test", "student.created", "student", f"ps1_{i:032x}") for i in range(8)
        )
    ctx.close()

    made = _run(home, "audit", "checkpoint")
    assert made.returncode == 0 and "checkpoint at record 8" in made.stdout, made.stderr
    assert "nothing new" in _run(home, "audit", "checkpoint").stdout
    verified = _run(home, "audit", "verify")
    assert verified.returncode == 0 and "1 signed checkpoints hold" in verified.stdout

    today = datetime.now(UTC).date().isoformat()
    out = tmp_path / "for-the-auditor"
    exported = _run(home, "audit", "export", "--from", today, "--to", today, "--out", str(out))
    assert exported.returncode == 0 and "records 1-8" in exported.stdout, exported.stderr
    assert _run(home, "audit", "verify", "--export", str(out)).returncode == 0
    records = out / "records.jsonl"
    records.write_text(records.read_text("utf-8").replace("student.created", "student.deleted", 1))
    broken = _run(home, "audit", "verify", "--export", str(out))
    assert broken.returncode == 1 and "record 1: content does not match" in broken.stderr


def test_trail_by_number_or_school_key_shows_the_pseudonym_only(tmp_path: Path) -> None:
    from overstap.domain.identifiers import Bsn
    from overstap.region import generate_region, iter_students

    home, region = tmp_path / "hub", tmp_path / "region"
    generate_region(region, students=40, seed=9)
    assert _run(home, "db", "upgrade").returncode == 0
    assert _run(home, "region", "load", str(region)).returncode == 0
    record = next(iter_students(region))
    number = record.student.identifier.value
    flag = "--bsn" if isinstance(record.student.identifier, Bsn) else "--onderwijsnummer"
    by_number = _run(home, "audit", "trail", flag, number, "--by", "auditor-anna")
    assert by_number.returncode == 0, by_number.stderr
    assert "student.created" in by_number.stdout and "ps1_" in by_number.stdout
    by_key = _run(home, "audit", "trail", "--school", str(record.student.school),
                  "--leerlingid", record.student.leerlingid)  # fmt: skip
    assert by_key.returncode == 0 and "audit.trail_viewed" in by_key.stdout  # the first look
    assert number not in by_number.stdout + by_number.stderr + by_key.stdout + by_key.stderr
    nobody = _run(home, "audit", "trail", "--school", "99ZZ00", "--leerlingid", "x")
    assert nobody.returncode == 1 and "no student" in nobody.stderr
