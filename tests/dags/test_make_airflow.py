"""`make airflow` as the README tells an administrator: Airflow standalone comes up on a free
port with the hub's DAGs, and the audit web view answers inside Airflow's own api-server at
/overstap; one Ctrl-C (SIGINT to the process group) stops it and everything it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (our own loopback)
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:  # not listening yet
        return 0, ""


def test_make_airflow_serves_the_dags_and_the_audit_view(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OVERSTAP_HOME": str(tmp_path / "home"),
        "AIRFLOW_HOME": str(tmp_path / "af"),
    }
    subprocess.run([str(ROOT / ".venv" / "bin" / "overstap"), "db", "upgrade"], env=env,
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    proc = subprocess.Popen(
        ["make", "-s", "airflow"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        port = re.search(r"127\.0\.0\.1:(\d+)/", first)
        assert port, first
        base = f"http://127.0.0.1:{port.group(1)}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status, _ = _get(f"{base}/api/v2/monitor/health")
            if status == 200:
                break
            time.sleep(2)
        else:
            raise AssertionError("airflow standalone did not come up")
        status, page = _get(f"{base}/overstap/login")
        assert status == 200 and "Log in" in page and "Overstap" in page
        assert (tmp_path / "af" / "simple_auth_manager_passwords.json.generated").exists()
        pids = _airflow_pids(tmp_path / "af")
        assert pids, "no Airflow process found under this AIRFLOW_HOME"
    finally:
        _stop(proc)
    assert proc.returncode is not None  # make itself ends on Ctrl-C, as in a terminal
    # One Ctrl-C, and soon nothing Airflow started is left: not the dag-processor, not a worker.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and _alive(pids):
        time.sleep(0.2)
    assert not _alive(pids), _alive(pids)


def _airflow_pids(airflow_home: Path) -> list[int]:
    """Every process whose environment says this AIRFLOW_HOME (so: started by this test)."""
    found = []
    marker = f"AIRFLOW_HOME={airflow_home}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return found


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if state != "Z":  # a zombie has ended; its parent just has not reaped it
            alive.append(pid)
    return alive


def _stop(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C as a person presses it: SIGINT to the terminal's process group, once."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
        raise AssertionError("make airflow did not stop on Ctrl-C") from None
