"""`make airflow`: run `airflow standalone` so that Ctrl-C stops every process it started.

Airflow 3.3's standalone, on Ctrl-C, stops its api-server, scheduler and triggerer, but a
dag-processor and the LocalExecutor's worker processes can outlive it, re-parented to init and
deaf to SIGINT and SIGTERM (seen on this machine: five processes left after a clean-looking
stop). So standalone runs in a process group of its own; Ctrl-C (or SIGTERM) is passed on to
that group, and once standalone has returned, whatever is left in the group gets SIGTERM and,
after a grace period, SIGKILL.

    python -m overstap.runtime.standalone [airflow standalone arguments...]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

GRACE_SECONDS = 10.0


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal still counts as alive
        return True
    return True


def end_group(pgid: int, grace: float = GRACE_SECONDS) -> str | None:
    """End what is left of the group: SIGTERM, then SIGKILL after `grace`. Returns the signal
    that ended it, None when nothing was left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not group_alive(pgid):
            return None if sig == signal.SIGTERM else "SIGTERM"
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return None if sig == signal.SIGTERM else "SIGTERM"
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and group_alive(pgid):
            time.sleep(0.2)
    return "SIGKILL"


def main(argv: list[str], patience: float = 40.0) -> int:
    airflow = str(Path(sys.executable).parent / "airflow")
    proc = subprocess.Popen([airflow, "standalone", *argv], start_new_session=True)
    stops: list[float] = []  # when each Ctrl-C (or SIGTERM) came

    def forward(_signum: int, _frame: FrameType | None) -> None:
        stops.append(time.monotonic())
        # A second Ctrl-C means no more patience for standalone's own shutdown.
        os.killpg(proc.pid, signal.SIGINT if len(stops) == 1 else signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    while True:
        try:
            code = proc.wait(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            # Standalone sometimes misses its own stop (3.3): after `patience`, stop it.
            if stops and time.monotonic() - stops[0] > patience:
                os.killpg(proc.pid, signal.SIGTERM)
                stops[0] = time.monotonic()
    ended_by = end_group(proc.pid)
    if ended_by:
        print(f"overstap: ended what airflow standalone left running ({ended_by})", flush=True)
    return 0 if stops else code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
