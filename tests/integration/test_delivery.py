"""Draining the outbox: delivered, retried, dead-lettered, replayed; and the sender killed with
SIGKILL after claiming, in the middle of a batch, and after the receiver stored a message but
before the hub committed. After recovery every message is stored exactly once at the receiver
and the hub agrees (on SQLite and PostgreSQL, with the sender in its own process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes import FakeDeliveryTransport, FakeReceiver
from sqlalchemy import Engine, func, select

from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.domain.delivery import RetryPolicy
from overstap.domain.identifiers import Brin, Oin
from overstap.ports import Route
from overstap.services.delivery import deliver_due, replay
from overstap.store.audit_log import AuditLog
from overstap.store.outbox import Outbox
from overstap.store.tables import mbo_institution, outbox
from overstap.store.upsert import upsert

ROUTE = Route("25MB", "fake", {})
TESTS = Path(__file__).resolve().parents[1]


def _ctx(engine: Engine, tmp_path: Path) -> HubContext:
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )
    with engine.begin() as conn:
        upsert(
            conn,
            mbo_institution,
            [
                {
                    "brin": "25MB",
                    "name": "ROC",
                    "oin": str(Oin.for_brin(Brin("25MB"))),
                    "transport": "sftp",
                }
            ],
            keys=["brin"],
        )
    return ctx


def _queue(engine: Engine, n: int) -> list[str]:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        box = Outbox(conn, now)
        return [
            box.enqueue(
                kind="dossier",
                object_ref=f"D{i:03d}",
                recipient="25MB",
                transport="fake",
                payload=b"payload %d" % i,
            )
            for i in range(n)
        ]


def _states(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.message_id: r.state for r in conn.execute(select(outbox))}


def test_a_round_delivers_and_a_transient_failure_waits_for_its_retry(
    engine: Engine, tmp_path: Path
) -> None:
    ctx = _ctx(engine, tmp_path)
    receiver = FakeReceiver(tmp_path / "receiver")
    ids = _queue(engine, 3)
    receiver.fail("transient", times=1)
    report = deliver_due(
        ctx, ROUTE, FakeDeliveryTransport(receiver), policy=RetryPolicy(base=timedelta(seconds=30))
    )
    assert (report.claimed, report.delivered, report.retrying) == (3, 2, 1)
    assert len(receiver.stored()) == 2
    waiting = [m for m, s in _states(engine).items() if s == "retry_wait"]
    assert len(waiting) == 1
    # Not due yet; due after the backoff.
    assert deliver_due(ctx, ROUTE, FakeDeliveryTransport(receiver)).claimed == 0
    later = deliver_due(
        ctx,
        ROUTE,
        FakeDeliveryTransport(receiver),
        now=lambda: datetime.now(UTC) + timedelta(minutes=2),
    )
    assert later.delivered == 1
    assert set(_states(engine).values()) == {"delivered"}
    assert sorted(receiver.stored()) == sorted(m.replace(":", "_") for m in ids)


def test_a_permanent_refusal_dead_letters_and_a_replay_delivers_with_the_same_message_id(
    engine: Engine, tmp_path: Path
) -> None:
    ctx = _ctx(engine, tmp_path)
    receiver = FakeReceiver(tmp_path / "receiver")
    [message_id] = _queue(engine, 1)
    receiver.fail("permanent")
    report = deliver_due(ctx, ROUTE, FakeDeliveryTransport(receiver))
    assert report.dead_letter == 1 and "0004" in report.details[message_id]
    replay(ctx, message_id)
    assert deliver_due(ctx, ROUTE, FakeDeliveryTransport(receiver)).delivered == 1
    assert list(receiver.stored()) == [message_id.replace(":", "_")]


def test_stored_but_not_confirmed_is_resent_and_stored_once(engine: Engine, tmp_path: Path) -> None:
    ctx = _ctx(engine, tmp_path)
    receiver = FakeReceiver(tmp_path / "receiver")
    [message_id] = _queue(engine, 1)
    receiver.fail("store_then_transient")
    assert deliver_due(ctx, ROUTE, FakeDeliveryTransport(receiver)).retrying == 1
    later = deliver_due(
        ctx,
        ROUTE,
        FakeDeliveryTransport(receiver),
        now=lambda: datetime.now(UTC) + timedelta(hours=1),
    )
    assert later.delivered == 1
    assert list(receiver.stored()) == [message_id.replace(":", "_")]


SENDER = """
import os, sys
from datetime import timedelta
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from fakes import FakeDeliveryTransport, FakeReceiver
from overstap.bootstrap import HubContext
from overstap.ports import Route
from overstap.services.delivery import deliver_due

class SlowTransport(FakeDeliveryTransport):
    def send(self, route, messages):
        results = []
        for n, m in enumerate(messages):
            if n == 2 and os.environ.get("OVERSTAP_FAILPOINT") == "sending":
                Path(os.environ["OVERSTAP_FAILPOINT_FILE"]).write_text("sending")
                import time
                time.sleep(600)
            results += super().send(route, [m])
        return results

ctx = HubContext.open()
report = deliver_due(ctx, Route("25MB", "fake", {}), SlowTransport(FakeReceiver(Path(sys.argv[1]))), lease=timedelta(seconds=1))
print(report.delivered)
"""


@pytest.mark.parametrize("point", ["claimed", "sending", "sent"])
def test_sender_killed_at_any_point_recovers_with_each_message_stored_once(
    engine: Engine, db_url: str, tmp_path: Path, point: str
) -> None:
    ctx = _ctx(engine, tmp_path)
    receiver_dir = tmp_path / "receiver"
    ids = _queue(engine, 5)
    marker = tmp_path / "reached"
    env = {
        **os.environ,
        "OVERSTAP_HOME": str(tmp_path),
        "OVERSTAP_DATABASE_URL": db_url,
        "OVERSTAP_PSEUDONYM_KEY": "00" * 32,
        "OVERSTAP_FAILPOINT": point,
        "OVERSTAP_FAILPOINT_FILE": str(marker),
    }
    sender = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SENDER), str(receiver_dir), str(TESTS)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert sender.poll() is None, sender.stderr.read().decode()[-2000:] if sender.stderr else ""
        assert time.monotonic() < deadline, "the sender never reached the failpoint"
        time.sleep(0.05)
    sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=30)
    stored_before = FakeReceiver(receiver_dir).stored()
    expected = {"claimed": 0, "sending": 2, "sent": 5}[point]
    assert len(stored_before) == expected
    assert set(_states(engine).values()) == {"sending"}  # claimed, never settled

    # Recovery: once the lease has run out, the next round sends all five again.
    time.sleep(1.1)
    report = deliver_due(ctx, ROUTE, FakeDeliveryTransport(FakeReceiver(receiver_dir)))
    assert report.delivered == 5
    stored = FakeReceiver(receiver_dir).stored()
    assert sorted(stored) == sorted(m.replace(":", "_") for m in ids)  # each once, none lost
    assert set(_states(engine).values()) == {"delivered"}
    assert not list(receiver_dir.glob("*.part"))
    with engine.connect() as conn:
        assert AuditLog(conn).verify().problem is None
        expired = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert expired == 5
