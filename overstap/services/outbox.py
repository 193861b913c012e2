"""From a filled-in dossier to a queued message: approval, then the outbox.

1. `approve_dossiers`: a dossier whose parts are filled in becomes GOEDGEKEURD when the
   approval rule holds on the given day (toestemming Ja by the right person, DOMAIN.md), or
   GEWEIGERD when toestemming is Nee. Anything else waits.
2. `queue_dossiers`: every GOEDGEKEURD dossier is built (schema, profile rules, the hub's
   signature, CMS for SFTP receivers) and queued with a fresh MessageID in the same transaction
   that moves it to IN_OUTBOX. A dossier that fails a rule stays where it is, with the rules
   in the audit chain: only approved, valid dossiers ever enter the outbox.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Connection, select, update

from overstap.audit.chain import AuditEvent
from overstap.batching import chunks
from overstap.bootstrap import HubContext
from overstap.domain.dossier import Dossier, JaNee
from overstap.domain.states import DossierState
from overstap.services.dossier_pipeline import (
    PipelineConfig,
    process_dossiers,
    registry_envelopes,
)
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.dossiers import iter_dossiers
from overstap.store.outbox import Outbox
from overstap.store.tables import delivery_route, mbo_institution
from overstap.store.tables import dossier as dossier_table

ACTOR = "overstap outbox"


@dataclass
class ApprovalReport:
    approved: int = 0
    refused: int = 0
    waiting: int = 0


def approve_dossiers(ctx: HubContext, *, today: date, batch: int = 1000) -> ApprovalReport:
    """Apply the approval rule to every dossier whose parts are complete, as on `today`."""
    report = ApprovalReport()
    now = datetime.now(UTC)
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        candidates = list(
            iter_dossiers(conn, states=[DossierState.DEEL_B_INGEVULD, DossierState.GEWEIGERD])
        )
    for chunk in chunks(candidates, batch):
        with ctx.engine.begin() as conn:
            log = AuditLog(conn, fixed_clock(now))
            for d in chunk:
                target = _decision(d, today)
                if target is None:
                    report.waiting += 1
                    continue
                d.moved_to(target)  # the domain refuses an approval the rule does not allow
                _set_state(conn, d.dossier_id, target, now)
                log.append(
                    AuditEvent(
                        ACTOR,
                        "dossier.approved"
                        if target is DossierState.GOEDGEKEURD
                        else "dossier.refused",
                        "dossier",
                        d.dossier_id,
                        result="ok" if target is DossierState.GOEDGEKEURD else "refused",
                        detail={"by": d.inzage.by.value if d.inzage else None},
                    )
                )
                if target is DossierState.GOEDGEKEURD:
                    report.approved += 1
                else:
                    report.refused += 1
    return report


def plan_approvals(ctx: HubContext, *, today: date) -> dict[str, int]:
    """What `approve_dossiers` and `queue_dossiers` would do on `today`; writes nothing."""
    counts = {"would_approve": 0, "would_refuse": 0, "waiting": 0, "approved_to_queue": 0}
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        for d in iter_dossiers(conn, states=[DossierState.DEEL_B_INGEVULD, DossierState.GEWEIGERD]):
            target = _decision(d, today)
            key = {
                DossierState.GOEDGEKEURD: "would_approve",
                DossierState.GEWEIGERD: "would_refuse",
            }
            counts[key[target] if target is not None else "waiting"] += 1
        counts["approved_to_queue"] = sum(
            1 for _ in iter_dossiers(conn, states=[DossierState.GOEDGEKEURD])
        )
    return counts


def _decision(d: Dossier, today: date) -> DossierState | None:
    inzage = d.inzage
    if inzage is None or inzage.date > today:
        return None  # not answered (yet)
    if not d.approval_problems():
        return DossierState.GOEDGEKEURD
    if inzage.toestemming is JaNee.NEE and d.state is not DossierState.GEWEIGERD:
        return DossierState.GEWEIGERD
    return None  # e.g. toestemming by the wrong person: the school must ask again


def _set_state(conn: Connection, dossier_id: str, state: DossierState, now: datetime) -> None:
    conn.execute(
        update(dossier_table)
        .where(dossier_table.c.dossier_id == dossier_id)
        .values(state=state.value, updated_at=now)
    )


def routes(conn: Connection) -> dict[str, str]:
    """Transport per institution: its delivery route, else the registry's transport."""
    found = {r.brin: r.transport for r in conn.execute(select(mbo_institution))}
    found.update({r.brin: r.transport for r in conn.execute(select(delivery_route))})
    return found


@dataclass
class QueueReport:
    queued: int = 0
    held: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    message_ids: dict[str, str] = field(default_factory=dict)  # dossier id -> MessageID


def queue_dossiers(
    ctx: HubContext,
    *,
    today: date,
    pki_dir: Path,
    passphrase: bytes,
    workers: int = 1,
    batch: int = 500,
) -> QueueReport:
    """Build and queue every approved dossier (see the module docstring)."""
    report = QueueReport()
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        approved = list(iter_dossiers(conn, states=[DossierState.GOEDGEKEURD]))
        envelope = registry_envelopes(conn)
        transport = routes(conn)
    for chunk in chunks(approved, batch):
        # File receivers (SFTP, a folder) get the signed dossier CMS-encrypted: a file rests on
        # disks we do not control. SOAP receivers get it signed, inside a WS-Security envelope
        # over mutual TLS (the transport adds that).
        by_id = {d.dossier_id: d for d in chunk}
        outcomes = []
        for encrypt in (True, False):
            part = [d for d in chunk if (transport.get(str(d.receiving)) != "soap") is encrypt]
            if not part:
                continue
            config = PipelineConfig(pki_dir, passphrase, today, encrypt=encrypt)
            items = ((d, envelope(d)) for d in part)
            outcomes += list(process_dossiers(items, config, workers=workers))
        now = datetime.now(UTC)
        with ctx.engine.begin() as conn:
            box = Outbox(conn, now)
            log = AuditLog(conn, fixed_clock(now))
            for outcome in outcomes:
                d = by_id[outcome.dossier_id]
                if outcome.payload is None:
                    report.held += 1
                    report.rules.update({p.rule for p in outcome.problems})
                    log.append(
                        AuditEvent(
                            ACTOR,
                            "dossier.held",
                            "dossier",
                            d.dossier_id,
                            result="refused",
                            detail={"rules": sorted({p.rule for p in outcome.problems})},
                        )
                    )
                    continue
                d.moved_to(DossierState.IN_OUTBOX)
                message_id = box.enqueue(
                    kind="dossier",
                    object_ref=d.dossier_id,
                    recipient=str(d.receiving),
                    transport=transport.get(str(d.receiving), "soap"),
                    payload=outcome.payload,
                )
                _set_state(conn, d.dossier_id, DossierState.IN_OUTBOX, now)
                report.queued += 1
                report.message_ids[d.dossier_id] = message_id
    return report
