"""Approval and the transactional outbox on both backends.

Only approved, valid dossiers enter the outbox, each with its own MessageID, in the same
transaction as the state change; claims hold a lease; failures back off with jitter and end in
the dead letter; a replay keeps the MessageID."""

from __future__ import annotations

import random
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from hub_setup import MBO, NOW, TODAY, hub_with_dossiers, waiting_dossiers
from sqlalchemy import Engine, select

from overstap.domain.delivery import DeliveryState, RetryPolicy
from overstap.domain.errors import InvalidTransition
from overstap.domain.identifiers import Oin
from overstap.domain.states import DossierState
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.services.outbox import approve_dossiers, queue_dossiers
from overstap.services.pki import DEV_HUB_OIN
from overstap.store.audit_log import AuditLog
from overstap.store.outbox import Outbox
from overstap.store.tables import dossier as dossier_table
from overstap.store.tables import outbox as outbox_table

PASS = b"outbox-test-passphrase-1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_dev_pki(
        tmp_path_factory.mktemp("pki"),
        [
            PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub"),
            PartySpec(
                slug=f"mbo-{MBO}", name="Regio College Oost", oin=Oin.for_brin(MBO), kind="mbo"
            ),
        ],
        PASS,
    )


def _states(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.dossier_id: r.state for r in conn.execute(select(dossier_table))}


@pytest.mark.parametrize("transport", ["soap", "sftp"])
def test_only_approved_valid_dossiers_enter_the_outbox(
    engine: Engine, tmp_path: Path, pki: PkiLayout, transport: str
) -> None:
    ctx = hub_with_dossiers(engine, tmp_path, transport)
    cases = waiting_dossiers()
    approval = approve_dossiers(ctx, today=TODAY)
    assert (approval.approved, approval.refused, approval.waiting) == (6, 1, 2)
    states = _states(engine)
    assert states[cases["refused"].dossier_id] == "geweigerd"
    assert states[cases["later"].dossier_id] == "deel_b_ingevuld"
    assert states[cases["wrong_person"].dossier_id] == "deel_b_ingevuld"

    report = queue_dossiers(ctx, today=TODAY, pki_dir=pki.root, passphrase=PASS)
    assert report.queued == 6 and report.held == 0
    with engine.connect() as conn:
        rows = conn.execute(select(outbox_table)).mappings().all()
        assert AuditLog(conn).verify().problem is None
    assert {r["object_ref"] for r in rows} == set(report.message_ids)
    assert len({r["message_id"] for r in rows}) == 6
    assert all(r["state"] == "queued" and r["transport"] == transport for r in rows)
    encrypted = [b"<dossier" not in r["payload"] for r in rows]
    assert all(encrypted) if transport == "sftp" else not any(encrypted)
    states = _states(engine)
    assert {states[d] for d in report.message_ids} == {"in_outbox"}
    # Nothing more to queue: a second run changes nothing.
    again = queue_dossiers(ctx, today=TODAY, pki_dir=pki.root, passphrase=PASS)
    assert again.queued == 0


def test_the_domain_refuses_to_queue_an_unapproved_dossier() -> None:
    d = waiting_dossiers()["later"]
    with pytest.raises(InvalidTransition):
        d.moved_to(DossierState.IN_OUTBOX)


def _queued(engine: Engine, n: int) -> list[str]:
    with engine.begin() as conn:
        box = Outbox(conn, NOW)
        return [
            box.enqueue(
                kind="dossier",
                object_ref=f"D{i}",
                recipient="25MB",
                transport="sftp",
                payload=b"x%d" % i,
            )
            for i in range(n)
        ]


def test_claims_hold_a_lease_and_a_dead_senders_items_are_taken_over(
    engine: Engine, tmp_path: Path
) -> None:
    hub_with_dossiers(engine, tmp_path, "sftp")
    ids = _queued(engine, 3)
    with engine.begin() as conn:
        first = Outbox(conn, NOW).claim("25MB", limit=2, lease=timedelta(minutes=5))
    claimed = {i.message_id for i in first}
    assert len(claimed) == 2 and claimed < set(ids)
    with engine.begin() as conn:
        # Within the lease only the third is due; after it, the two come back (sender died).
        rest = [i.message_id for i in Outbox(conn, NOW + timedelta(minutes=1)).claim("25MB")]
    assert rest == sorted(set(ids) - claimed)
    with engine.begin() as conn:
        later = Outbox(conn, NOW + timedelta(minutes=6)).claim("25MB")
    assert {i.message_id for i in later} == claimed
    assert all(i.attempts == 1 for i in later)  # attempts counted before this claim


def test_failures_back_off_with_jitter_then_dead_letter_and_a_replay_keeps_the_message_id(
    engine: Engine, tmp_path: Path
) -> None:
    hub_with_dossiers(engine, tmp_path, "sftp")
    [message_id] = _queued(engine, 1)
    policy = RetryPolicy(
        base=timedelta(seconds=10), cap=timedelta(minutes=2), max_attempts=3, jitter=0.5
    )
    moment = NOW
    waits = []
    for attempt in range(1, 4):
        with engine.begin() as conn:
            box = Outbox(conn, moment)
            [item] = box.claim("25MB")
            assert item.message_id == message_id
            state = box.failed(
                message_id, "peer down", retryable=True, policy=policy, rng=random.Random(attempt)
            )
        with engine.connect() as conn:
            row = (
                conn.execute(select(outbox_table).where(outbox_table.c.message_id == message_id))
                .mappings()
                .one()
            )
        if attempt < 3:
            assert state is DeliveryState.RETRY_WAIT
            due = (
                row["next_attempt_at"].replace(tzinfo=UTC)
                if row["next_attempt_at"].tzinfo is None
                else row["next_attempt_at"]
            )
            waits.append((due - moment).total_seconds())
            with engine.begin() as conn:  # not due before its time
                assert Outbox(conn, due - timedelta(seconds=1)).claim("25MB") == []
            moment = due
        else:
            assert state is DeliveryState.DEAD_LETTER
    assert 5 <= waits[0] <= 15 and 10 <= waits[1] <= 30  # 10 s then 20 s, +-50%
    with engine.begin() as conn:
        box = Outbox(conn, moment)
        assert box.counts() == {"dead_letter": 1}
        box.replay(message_id)
        [again] = box.claim("25MB")
        box.delivered(message_id, receipt="accepted")
    assert again.message_id == message_id and again.payload == b"x0"
    with engine.connect() as conn:
        actions = [r.action for r in AuditLog(conn).for_object("message", message_id)]
    assert actions == [
        "message.queued",
        "message.retry",
        "message.retry",
        "message.dead_letter",
        "message.replayed",
        "message.delivered",
    ]


def test_a_permanent_refusal_dead_letters_at_once(engine: Engine, tmp_path: Path) -> None:
    hub_with_dossiers(engine, tmp_path, "soap")
    [message_id] = _queued(engine, 1)
    with engine.begin() as conn:
        box = Outbox(conn, NOW)
        box.claim("25MB")
        assert (
            box.failed(message_id, "0004 not XSD-conform", retryable=False, policy=RetryPolicy())
            is DeliveryState.DEAD_LETTER
        )
        with pytest.raises(InvalidTransition):
            box.delivered(message_id)
