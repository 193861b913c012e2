"""`overstap sis pull --school` as an administrator runs it against a loaded synthetic region."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OVERSTAP = str(Path(sys.executable).with_name("overstap"))


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVERSTAP_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [OVERSTAP, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_pull_reports_counts_quarantine_reasons_and_an_unchanged_export(tmp_path: Path) -> None:
    home, region = tmp_path / "home", tmp_path / "region"
    for args in (
        ("region", "generate", "--students", "200", "--seed", "21", "--out", str(region)),
        ("region", "load", str(region)),
    ):
        done = _run(home, *args)
        assert done.returncode == 0, done.stderr
    location = sorted(p.name for p in (region / "sis").iterdir())[0]
    export = region / "sis" / location / "leerlingen.csv"
    rows = export.read_bytes().count(b"\r\n") - 1

    first = _run(home, "sis", "pull", "--school", location)
    assert first.returncode == 0, first.stderr
    # The region load put the same students in: the export changes nothing.
    assert f"{rows:,} records: 0 new, 0 changed, {rows:,} unchanged, 0 quarantined" in first.stdout

    again = _run(home, "sis", "pull", "--school", location)
    assert again.returncode == 0 and "has not changed since the last pull" in again.stdout

    lines = export.read_bytes().split(b"\r\n")
    separator = b";" if b";" in lines[0] else b","
    lines[2] = lines[2] + separator + b"extra"
    export.write_bytes(b"\r\n".join(lines))
    bad = _run(home, "sis", "pull", "--school", location)
    assert bad.returncode == 1
    assert "1 quarantined" in bad.stdout and "(e.g. leerlingen.csv line 3)" in bad.stdout
    students = [json.loads(x) for x in (region / "students.jsonl").read_text().splitlines()]
    numbers = {s["bsn"] or s["onderwijsnummer"] for s in students}
    assert not any(n in bad.stdout + bad.stderr for n in numbers)

    unknown = _run(home, "sis", "pull", "--school", "99ZZ00")
    assert unknown.returncode == 2 and "no SIS is configured" in unknown.stderr
