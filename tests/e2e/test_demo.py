"""`overstap demo` (what `make demo` runs) from an empty home, twice: the second run changes nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

OVERSTAP = str(Path(sys.executable).with_name("overstap"))


def _demo(home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVERSTAP_HOME": str(home), "COLUMNS": "160"}
    return subprocess.run(
        [OVERSTAP, "demo", "--students", "300", "--seed", "7"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_demo_runs_from_nothing_and_is_idempotent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _demo(home)
    assert first.returncode == 0, first.stdout + first.stderr
    loaded = re.search(
        r"loaded: 300 new, 0 changed, 0 unchanged, (\d+) dossiers new, 0 changed; "
        r"(\d+) audit records written",
        first.stdout,
    )
    assert loaded, first.stdout
    dossiers, records = int(loaded[1]), int(loaded[2])
    assert 200 < dossiers < 300  # most students apply; some do not
    assert records == 1 + 300 + dossiers  # the region, each student, each dossier
    assert f"audit chain OK: {records} records" in first.stdout
    built = re.search(
        r"dossiers: (\d+) ready to send \(signed, encrypted\), (\d+) held back", first.stdout
    )
    assert built, first.stdout
    assert int(built[1]) + int(built[2]) == dossiers
    assert int(built[2]) > 0 and "VOMBO-" in first.stdout  # the deliberate mistakes are held
    assert (home / "pki" / "ca" / "root.crt").exists()

    second = _demo(home)
    assert second.returncode == 0, second.stdout + second.stderr
    assert " 0 certificates issued" in second.stdout
    assert (
        "loaded: 0 new, 0 changed, 300 unchanged, 0 dossiers new, 0 changed; "
        "1 audit records written" in second.stdout
    )
    assert f"audit chain OK: {records + 1} records" in second.stdout
    assert built[0] in second.stdout  # the same verdicts
    # No BSN of the region reaches the demo's output.
    import json

    lines = (home / "regions" / "demo-7-300" / "students.jsonl").read_text().splitlines()
    bsns = [b for b in (json.loads(line).get("bsn") for line in lines) if b]
    assert bsns
    assert not any(b in first.stdout + second.stdout for b in bsns)
