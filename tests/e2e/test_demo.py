"""`overstap demo` (what `make demo` runs) from an empty home, twice: the second run changes nothing."""

from __future__ import annotations

import os
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
    assert "loaded: 300 new, 0 changed, 0 unchanged; 301 audit records written" in first.stdout
    assert "audit chain OK: 301 records" in first.stdout
    assert (home / "pki" / "ca" / "root.crt").exists()

    second = _demo(home)
    assert second.returncode == 0, second.stdout + second.stderr
    assert " 0 certificates issued" in second.stdout
    assert "loaded: 0 new, 0 changed, 300 unchanged; 1 audit records written" in second.stdout
    assert "audit chain OK: 302 records" in second.stdout
    # No BSN of the region reaches the demo's output.
    import json

    lines = (home / "regions" / "demo-7-300" / "students.jsonl").read_text().splitlines()
    bsns = [b for b in (json.loads(line).get("bsn") for line in lines) if b]
    assert bsns
    assert not any(b in first.stdout + second.stdout for b in bsns)
