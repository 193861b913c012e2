"""`overstap demo` (what `make demo` runs): a small region's year through Airflow ends with a
report that matches the region's known truth, twice from the same home (each run starts afresh).
SFTP parties are served from folders here (OVERSTAP_DEMO_SFTP=folders), the way the demo runs
on a machine without OpenSSH; the full-cycle test (tests/dags/test_full_cycle.py) runs OpenSSH."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

OVERSTAP = str(Path(sys.executable).with_name("overstap"))


def _demo(home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OVERSTAP_HOME": str(home),
        "COLUMNS": "160",
        "OVERSTAP_DEMO_SFTP": "folders",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [OVERSTAP, "demo", "--students", "150", "--seed", "2026"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_demo_runs_a_year_and_matches_the_known_truth(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _demo(home)
    out = first.stdout
    assert first.returncode == 0, out[-5000:] + first.stderr[-5000:]
    assert "The hub's end state matches the region's known truth" in out
    assert re.search(r"audit chain OK: [\d,]+ records, \d+ signed checkpoints hold", out)
    runs = re.search(r"(\d+) DAG runs in \d+ s \(.*\), 0 failed", out)
    assert runs and int(runs[1]) > 40, out[-3000:]
    demo = home / "demo"
    deliveries = out[out.index("Deliveries") : out.index("audit chain OK")]
    assert re.search(r"dossier\W+(soap|folder)\W+delivered\W+\d+", deliveries), deliveries
    # An institution served from a folder gets its dossiers encrypted, as on SFTP.
    dossiers = [
        p for p in (demo / "drops" / "mbo").glob("*/in/*") if not p.name.startswith("manifest-")
    ]
    assert dossiers and all(p.suffix == ".p7m" for p in dossiers), dossiers[:3]
    # The municipalities' folder drops hold their own signal files, and only those.
    signal_files = list((demo / "drops" / "gm").glob("*/in/SIG-*.xml.p7m"))
    assert signal_files
    assert all(p.name.startswith(f"SIG-{p.parent.parent.name}-") for p in signal_files)
    assert (demo / "registry.yaml").is_file()
    assert "make airflow" in out and "password" in out

    second = _demo(home)  # afresh: the same year, the same report
    assert second.returncode == 0, second.stdout[-5000:]
    table = out[out.index("Students") : out.index("audit chain OK")]
    assert (
        table
        == second.stdout[second.stdout.index("Students") : second.stdout.index("audit chain OK")]
    )
    # No personal number of the region reaches the demo's output.
    lines = (demo / "region" / "students.jsonl").read_text().splitlines()
    numbers = [n for n in (json.loads(line).get("bsn") for line in lines) if n]
    assert numbers
    assert not any(n in out + first.stderr + second.stdout for n in numbers)


def test_demo_never_removes_a_directory_it_did_not_make(tmp_path: Path) -> None:
    home = tmp_path / "home"
    theirs = home / "demo" / "notes.txt"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("someone's own files")
    done = _demo(home)
    assert done.returncode == 2
    assert "was not made by the demo" in " ".join(done.stdout.split())
    assert theirs.read_text() == "someone's own files"
