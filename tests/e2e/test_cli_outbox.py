"""`overstap outbox list` and `overstap outbox replay` as an administrator uses them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from overstap.bootstrap import HubContext
from overstap.domain.delivery import RetryPolicy
from overstap.store.outbox import Outbox

OVERSTAP = str(Path(sys.executable).with_name("overstap"))


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVERSTAP_HOME": str(home), "COLUMNS": "250"}
    return subprocess.run(
        [OVERSTAP, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_list_shows_a_dead_letter_and_replay_queues_it_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run(home, "db", "upgrade").returncode == 0
    ctx = HubContext.open({"OVERSTAP_HOME": str(home)})
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        box = Outbox(conn, now)
        message_id = box.enqueue(
            kind="dossier", object_ref="DOS-1", recipient="25MB", transport="soap", payload=b"<x/>"
        )
        box.claim("25MB")
        box.failed(message_id, "0004 not XSD-conform", retryable=False, policy=RetryPolicy())
    ctx.close()

    listed = _run(home, "outbox", "list")
    assert listed.returncode == 0, listed.stderr
    assert "dead_letter: 1" in listed.stdout and message_id in listed.stdout
    assert "0004 not XSD-conform" in listed.stdout

    replayed = _run(home, "outbox", "replay", message_id)
    assert replayed.returncode == 0 and "same MessageID" in replayed.stdout
    queued = _run(home, "outbox", "list", "--state", "queued")
    assert message_id in queued.stdout and "queued: 1" in queued.stdout

    again = _run(home, "outbox", "replay", message_id)
    assert again.returncode == 1 and "cannot be replayed" in again.stderr
    assert _run(home, "outbox", "replay", "urn:uuid:none").returncode == 1
    assert _run(home, "outbox", "list", "--state", "lost").returncode == 1
