"""`overstap sis check` as a school administrator runs it on their SIS export."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from overstap.region import generate_region, load_region

OVERSTAP = str(Path(sys.executable).with_name("overstap"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}
    return subprocess.run(
        [OVERSTAP, "sis", "check", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One export per dialect, from a small synthetic region."""
    directory = tmp_path_factory.mktemp("region")
    generate_region(directory, students=300, seed=4)
    found: dict[str, Path] = {}
    for school in load_region(directory).vo_schools:
        found.setdefault(school.sis, directory / "sis" / str(school.location) / "leerlingen.csv")
    assert set(found) == {"magister", "somtoday"}
    return found


@pytest.mark.parametrize("dialect", ["magister", "somtoday"])
def test_a_clean_export_passes(exports: dict[str, Path], dialect: str) -> None:
    done = _run("--mapping", dialect, str(exports[dialect]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "would be refused: 0" in done.stdout
    assert "BSNs pass the elfproef" in done.stdout


def test_refused_records_are_counted_with_line_numbers(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    lines = exports["magister"].read_bytes().split(b"\r\n")
    fields = lines[2].split(b";")
    birth_date = fields[5]
    fields[5] = birth_date.replace(b"-", b".")  # line 3: 14.05.2009
    lines[2] = b";".join(fields)
    lines[4] = lines[4] + b";extra"  # line 5: one column too many
    broken = tmp_path / "leerlingen.csv"
    broken.write_bytes(b"\r\n".join(lines))
    done = _run("--mapping", "magister", str(broken))
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "would be refused: 2" in out
    assert "DATE-FORMAT: 1 record: the date is not written as dd-mm-yyyy" in out
    assert "leerlingen.csv line 3" in out and "leerlingen.csv line 5" in out
    assert "COLUMNS: 1 record" in out
    assert birth_date.decode() not in out and fields[5].decode() not in out


def test_the_wrong_mapping_says_why(exports: dict[str, Path]) -> None:
    done = _run("--mapping", "somtoday", str(exports["magister"]))
    assert done.returncode == 1
    assert "the header line uses a semicolon" in done.stdout
    assert "Required columns missing: leerlingnummer" in done.stdout


def test_an_unknown_mapping_exits_2(exports: dict[str, Path], tmp_path: Path) -> None:
    done = _run("--mapping", "magistr", str(exports["magister"]))
    assert done.returncode == 2
    assert "unknown SIS mapping 'magistr'" in done.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nformat: csv\nfields: {}\n", encoding="utf-8")
    done = _run("--mapping", str(broken), str(exports["magister"]))
    assert done.returncode == 2
    assert f"{broken} line" in done.stderr.replace("\n", "")
