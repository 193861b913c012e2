"""`overstap signals preview` and `overstap signals run` as an administrator uses them: a preview
writes nothing, a run raises once, a second run of the same day raises nothing more, and no
personal number is printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

from overstap.region import generate_region, iter_students

OVERSTAP = str(Path(sys.executable).with_name("overstap"))


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVERSTAP_HOME": str(home), "COLUMNS": "250"}
    return subprocess.run(
        [OVERSTAP, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _to_raise(out: str) -> int:
    found = re.search(r"(\d+) to raise", out)
    assert found, out
    return int(found.group(1))


def test_preview_then_run_then_nothing_new(tmp_path: Path) -> None:
    region, home = tmp_path / "region", tmp_path / "home"
    generate_region(region, students=200, seed=3)
    assert _run(home, "db", "upgrade").returncode == 0
    loaded = _run(home, "region", "load", str(region))
    assert loaded.returncode == 0, loaded.stderr

    preview = _run(home, "signals", "preview", "--date", "2027-04-01")
    assert preview.returncode == 0, preview.stderr
    # No statuses came in (no intake ran): every leaving-year student still in the cohort on the
    # deadline has no registration.
    deadline = date(2027, 4, 1)
    expected = sum(
        r.student.leaving_year
        and (r.scenario.left_cohort is None or r.scenario.left_cohort > deadline)
        for r in iter_students(region)
    )
    assert _to_raise(preview.stdout) == expected > 0
    assert "geen_aanmelding" in preview.stdout and "2026-2027" in preview.stdout
    assert _to_raise(_run(home, "signals", "preview", "--date", "2027-04-01").stdout) == expected

    # No municipality has a delivery route yet: the signals are raised, their files wait and
    # the administrator is told which municipalities (no PKI is needed until a file is made).
    ran = _run(home, "signals", "run", "--date", "2027-04-01")
    assert ran.returncode == 0 and _to_raise(ran.stdout) == expected, ran.stderr
    assert "files queued: 0" in ran.stdout and "no delivery route, waiting" in ran.stderr
    again = _run(home, "signals", "run", "--no-files", "--date", "2027-04-01")
    assert again.returncode == 0 and _to_raise(again.stdout) == 0
    numbers = {r.student.identifier.value for r in iter_students(region)}
    assert not any(n in preview.stdout + ran.stdout for n in numbers)

    bad = _run(home, "signals", "preview", "--date", "1 april")
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr
