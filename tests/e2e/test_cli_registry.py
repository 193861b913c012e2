"""`overstap registry check|apply|schedules` as an administrator runs them on a region's registry
file: a good file is summarised, a bad one is refused naming file, line and field; applying the
same file twice changes nothing the second time; schedules come out as environment lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from registry_files import registry_data, write_registry

OVERSTAP = str(Path(sys.executable).with_name("overstap"))


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVERSTAP_HOME": str(home), "COLUMNS": "250"}
    env.pop("OVERSTAP_PKI_DIR", None)
    return subprocess.run(
        [OVERSTAP, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def region_dir(registry_region: Path) -> Path:
    return registry_region


def _write(path: Path, data: dict[str, Any]) -> tuple[Path, str]:
    return write_registry(path, data)


def test_check_a_good_file(tmp_path: Path, region_dir: Path) -> None:
    file, _ = _write(tmp_path / "registry.yaml", registry_data(region_dir))
    done = _run(tmp_path / "home", "registry", "check", str(file))
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "region synth-3 (2026-2027)" in out
    assert "2 school locations (2 with a SIS source)" in out
    assert "2 institutions, 4 municipalities (2 with a route)" in out
    assert "2 connections, 2 schedules" in out
    assert out.count("has no route: its signals wait") == 2  # warnings, not errors
    assert "certificates not checked" in out


def test_check_a_bad_file(tmp_path: Path, region_dir: Path) -> None:
    data = registry_data(region_dir)
    data["mbo_institutions"][1]["route"]["settings"]["password"] = "hunter2"
    file, text = _write(tmp_path / "bad.yaml", data)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "password: hunter2" in t)
    done = _run(tmp_path / "home", "registry", "check", str(file))
    assert done.returncode == 1
    err = " ".join(done.stderr.split())
    assert f"{file} line {line}: mbo_institutions[1].route.settings.password:" in err
    assert "REGISTRY-SECRET" in err and "hunter2" not in err
    assert done.stdout == ""


def test_apply_twice(tmp_path: Path, region_dir: Path) -> None:
    home = tmp_path / "home"
    file, _ = _write(tmp_path / "registry.yaml", registry_data(region_dir))
    first = _run(home, "registry", "apply", str(file))
    assert first.returncode == 0, first.stderr
    out = " ".join(first.stdout.split())
    assert "registry synth-3 applied: 2 SIS sources, 2 institution routes" in out
    assert "2 municipality routes, 0 removed" in out

    second = _run(home, "registry", "apply", str(file))
    assert second.returncode == 0, second.stderr
    assert "registry synth-3 unchanged (nothing to apply)" in " ".join(second.stdout.split())


def test_schedules_prints_environment_lines(tmp_path: Path, region_dir: Path) -> None:
    file, _ = _write(tmp_path / "registry.yaml", registry_data(region_dir))
    done = _run(tmp_path / "home", "registry", "schedules", str(file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "OVERSTAP_SCHEDULE_DELIVERY=*/15 6-20 * * *",
        "OVERSTAP_SCHEDULE_SIGNALS=0 6 * * *",
    ]
