"""`end_group` (make airflow's clean-up): a process group that ignores SIGTERM still ends, by
SIGKILL after the grace period, and an empty group is left alone."""

from __future__ import annotations

import subprocess
import sys
import time

from overstap.runtime.standalone import end_group, group_alive

DEAF = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


def test_a_group_deaf_to_sigterm_is_killed() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", DEAF], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    started = time.monotonic()
    assert end_group(proc.pid, grace=0.5) == "SIGKILL"
    assert time.monotonic() - started < 5
    proc.wait(timeout=5)
    assert not group_alive(proc.pid)


def test_a_group_that_obeys_sigterm_ends_by_it() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)  # fmt: skip
    time.sleep(0.3)
    # A zombie still counts as a member until it is reaped: reap it as the supervisor's wait does.
    import threading

    threading.Thread(target=proc.wait, daemon=True).start()
    assert end_group(proc.pid, grace=5) == "SIGTERM"


def test_nothing_left_is_nothing_to_do() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait(timeout=10)
    assert end_group(proc.pid, grace=0.5) is None
