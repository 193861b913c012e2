"""Run Airflow and the hub in fresh interpreters, as the scheduler would: the DAG tests' harness."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
BIN = Path(sys.executable).parent


def airflow_env(tmp: Path) -> dict[str, str]:
    """A throwaway AIRFLOW_HOME and OVERSTAP_HOME under `tmp`; the venv's bin first on PATH."""
    return {
        **os.environ,
        "OVERSTAP_HOME": str(tmp / "home"),
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__PARALLELISM": "2",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def migrate(env: dict[str, str]) -> None:
    migrated = subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr[-3000:]


def run_python(env: dict[str, str], code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter; `args` arrive as sys.argv[1:]."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def region_with_pki(env: dict[str, str], region_dir: Path, students: int, seed: int) -> None:
    """`overstap region generate`, `certs init --region` and `region load`, as an administrator
    would set up a synthetic region for the DAGs."""
    overstap = str(BIN / "overstap")
    for args in (
        ("region", "generate", "--students", str(students), "--seed", str(seed),
         "--out", str(region_dir)),
        ("certs", "init", "--region", str(region_dir)),
        ("region", "load", str(region_dir)),
    ):  # fmt: skip
        done = subprocess.run(
            [overstap, *args], env=env, capture_output=True, text=True, timeout=180, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
