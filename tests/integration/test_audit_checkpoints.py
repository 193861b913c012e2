"""Signed checkpoints of the audit chain: made once per new head, verified with the chain, and
catching what the chain alone cannot: a chain rewritten consistently by someone without the
hub's key, records cut off the end, an altered checkpoint, a checkpoint signed by another key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update

from overstap.audit.chain import AuditEvent, record_hash
from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.crypto.trust import TrustStore
from overstap.domain.identifiers import Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.services.audit_checkpoints import make_checkpoint, verify_with_checkpoints
from overstap.services.pki import DEV_HUB_OIN, hub_signer
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.tables import audit_checkpoint, audit_event, audit_head
from overstap.xml.dsig import Signer

PASS = b"audit-checkpoint-test"
HUB = Oin(DEV_HUB_OIN)
MOMENT = datetime(2026, 12, 2, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_dev_pki(
        tmp_path_factory.mktemp("pki"),
        [PartySpec(slug="hub", name="Overstap Hub", oin=HUB, kind="hub"),
         PartySpec(slug="other", name="Iemand anders", oin=Oin("00000001000000000042"),
                   kind="gemeente")],
        PASS,
    )  # fmt: skip


def _hub(engine: Engine, tmp_path: Path, records: int) -> HubContext:
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )
    with engine.begin() as conn:
        AuditLog(conn, fixed_clock(MOMENT)).append_many(
            AuditEvent("test", "thing.done", "thing", f"t{i}", detail={"n": i})
            for i in range(records)
        )
    return ctx


def _verify(ctx: HubContext, pki: PkiLayout) -> object:
    return verify_with_checkpoints(ctx, TrustStore.from_pem_file(pki.trust_bundle_path), HUB)


def test_a_checkpoint_per_new_head_and_the_chain_verifies(
    engine: Engine, tmp_path: Path, pki: PkiLayout
) -> None:
    ctx = _hub(engine, tmp_path, 20)
    signer = hub_signer(pki.root, PASS)
    first = make_checkpoint(ctx, signer, now=MOMENT)
    assert first is not None and first.checkpoint.seq == 20
    assert make_checkpoint(ctx, signer, now=MOMENT) is None  # nothing new: no new checkpoint
    _hub(engine, tmp_path, 5)
    assert make_checkpoint(ctx, signer, now=MOMENT).checkpoint.seq == 25  # type: ignore[union-attr]
    result = _verify(ctx, pki)
    assert result.ok and result.checkpoints == 2 and result.chain.count == 25  # type: ignore[attr-defined]


def _unguard(engine: Engine) -> None:
    # Someone with the database file: the append-only triggers are no obstacle to them.
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_event_no_update"))
        conn.execute(text("DROP TRIGGER audit_event_no_delete"))


def _rewrite_from(engine: Engine, seq: int) -> None:
    """Alter record `seq` and re-hash everything after it: a chain that verifies on its own."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(audit_event).where(audit_event.c.seq >= seq).order_by(audit_event.c.seq)
        ).all()
        prev = conn.execute(
            select(audit_event.c.hash).where(audit_event.c.seq == seq - 1)
        ).scalar_one()
        for row in rows:
            result = "forged" if row.seq == seq else row.result
            h = record_hash(row.seq, row.at, row.actor, row.action, row.object_kind, row.object_ref,
                            result, row.origin, row.detail, prev)  # fmt: skip
            conn.execute(update(audit_event).where(audit_event.c.seq == row.seq)
                         .values(result=result, prev_hash=prev, hash=h))  # fmt: skip
            prev = h
        conn.execute(update(audit_head).values(hash=prev))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_what_only_the_checkpoints_catch(engine: Engine, tmp_path: Path, pki: PkiLayout) -> None:
    ctx = _hub(engine, tmp_path, 30)
    make_checkpoint(ctx, hub_signer(pki.root, PASS), now=MOMENT)
    _unguard(engine)

    _rewrite_from(engine, 12)
    result = _verify(ctx, pki)
    assert result.chain.ok and not result.ok  # type: ignore[attr-defined]
    assert result.problem.seq == 30 and "rewritten" in result.problem.reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_records_cut_off_the_end_below_a_checkpoint(
    engine: Engine, tmp_path: Path, pki: PkiLayout
) -> None:
    ctx = _hub(engine, tmp_path, 30)
    make_checkpoint(ctx, hub_signer(pki.root, PASS), now=MOMENT)
    _unguard(engine)
    with engine.begin() as conn:
        conn.execute(audit_event.delete().where(audit_event.c.seq > 26))
        last = conn.execute(select(audit_event.c.hash).where(audit_event.c.seq == 26)).scalar_one()
        conn.execute(update(audit_head).values(seq=26, hash=last))
    result = _verify(ctx, pki)
    assert result.chain.ok and "removed from the end" in result.problem.reason  # type: ignore[attr-defined]


def test_an_altered_or_foreign_checkpoint_is_refused(
    engine: Engine, tmp_path: Path, pki: PkiLayout
) -> None:
    ctx = _hub(engine, tmp_path, 10)
    make_checkpoint(ctx, hub_signer(pki.root, PASS), now=MOMENT)
    with engine.begin() as conn:
        conn.execute(update(audit_checkpoint).values(at="2020-01-01T00:00:00.000000Z"))
    assert "altered" in _verify(ctx, pki).problem.reason  # type: ignore[attr-defined]

    ctx2 = _hub(engine, tmp_path, 1)
    other = Signer.from_files(pki.key_path("other", "sign"), pki.cert_path("other", "sign"), PASS)
    with engine.begin() as conn:
        conn.execute(audit_checkpoint.delete())
    make_checkpoint(ctx2, other, now=MOMENT)
    result = _verify(ctx2, pki)
    assert "not trusted" in result.problem.reason  # type: ignore[attr-defined]
