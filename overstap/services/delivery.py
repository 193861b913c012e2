"""Drain the outbox towards one receiver: claim, send, settle; safe to kill at any point.

One round: claim due messages with a lease (transaction 1), hand them to the transport (no
transaction held), settle each result (transaction 2): delivered, retry later with backoff, or
dead letter. The dossier follows: IN_OUTBOX -> VERZONDEN -> AFGELEVERD on delivery, DEAD_LETTER
on a permanent refusal. A sender killed after claiming leaves its messages SENDING until the
lease runs out; the next round sends them again with the same MessageIDs, and the receiver's
deduplication (SOAP MessageID, file name for SFTP and folders) makes that one delivery.

`OVERSTAP_FAILPOINT=<name>` (tests only) stops the process at a named point - `claimed`,
`sent` - so the fault tests can SIGKILL it exactly there. It is read when the round runs and
does nothing when unset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, func, select, update

from overstap.audit.chain import AuditEvent
from overstap.bootstrap import HubContext
from overstap.domain.delivery import DeliveryState, RetryPolicy
from overstap.domain.errors import ConfigurationError, RetryableDeliveryError
from overstap.domain.states import DOSSIER, DossierState
from overstap.ports import DeliveryTransport, Outgoing, Route, SendResult
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.outbox import Outbox, OutboxItem
from overstap.store.signals import mark_delivered
from overstap.store.tables import delivery_route, mbo_institution, municipality_route
from overstap.store.tables import dossier as dossier_table
from overstap.store.upsert import upsert

# The outbox kind of a signal file's XML (services.signal_files): its delivery closes the signals.
SIGNAL_FILE_KIND = "signals"


@dataclass
class DeliveryReport:
    recipient: str
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead_letter: int = 0
    details: dict[str, str] = field(default_factory=dict)  # MessageID -> code, for failures


def _failpoint(name: str) -> None:
    target = os.environ.get("OVERSTAP_FAILPOINT")
    if target != name:
        return
    marker = os.environ.get("OVERSTAP_FAILPOINT_FILE")
    if marker:
        Path(marker).write_text(name)
    while True:  # wait to be killed
        time.sleep(1)


def route_rows(routes: Sequence[Route], key: str, now: datetime) -> list[dict[str, object]]:
    """`delivery_route` (key "brin") or `municipality_route` (key "gemeente") rows."""
    return [
        {key: r.recipient, "transport": r.transport, "settings": dict(r.settings),
         "updated_at": now}
        for r in routes
    ]  # fmt: skip


def save_routes(ctx: HubContext, routes: Sequence[Route]) -> None:
    with ctx.engine.begin() as conn:
        upsert(conn, delivery_route, route_rows(routes, "brin", datetime.now(UTC)), keys=["brin"])


def route_for(ctx: HubContext, recipient: str) -> Route:
    """The route of an mbo institution (BRIN) or of a municipality (GMnnnn, signal files)."""
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        row = conn.execute(
            select(delivery_route.c.transport, delivery_route.c.settings).where(
                delivery_route.c.brin == recipient
            )
        ).first()
        if row is None:
            row = conn.execute(
                select(municipality_route.c.transport, municipality_route.c.settings).where(
                    municipality_route.c.gemeente == recipient
                )
            ).first()
    if row is None:
        raise ConfigurationError(
            f"delivery route {recipient}", "no route is configured for this receiver"
        )
    return Route(recipient, row.transport, dict(row.settings))


def save_municipality_routes(ctx: HubContext, routes: Sequence[Route]) -> None:
    rows = route_rows(routes, "gemeente", datetime.now(UTC))
    with ctx.engine.begin() as conn:
        upsert(conn, municipality_route, rows, keys=["gemeente"])


def recipients_with_due(ctx: HubContext, now: datetime | None = None) -> list[str]:
    """Institutions that have messages waiting (the mapped task's input)."""
    from overstap.store.tables import outbox

    moment = now or datetime.now(UTC)
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        rows = conn.execute(
            select(outbox.c.recipient)
            .where(
                (outbox.c.state.in_([DeliveryState.QUEUED.value, DeliveryState.RETRY_WAIT.value]))
                | (outbox.c.state == DeliveryState.SENDING.value)
            )
            .where((outbox.c.next_attempt_at <= moment) | (outbox.c.lease_until < moment))
            .distinct()
            .order_by(outbox.c.recipient)
        )
        known = {r.brin for r in conn.execute(select(mbo_institution.c.brin))}
        known |= set(conn.execute(select(municipality_route.c.gemeente)).scalars())
        return [r.recipient for r in rows if r.recipient in known]


def due_count(ctx: HubContext, recipient: str, now: datetime | None = None) -> int:
    """Messages a delivery round to `recipient` would claim now (a dry run's answer)."""
    from overstap.store.tables import outbox

    moment = now or datetime.now(UTC)
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.recipient == recipient)
                .where(
                    outbox.c.state.in_([DeliveryState.QUEUED.value, DeliveryState.RETRY_WAIT.value])
                    | (outbox.c.state == DeliveryState.SENDING.value)
                )
                .where((outbox.c.next_attempt_at <= moment) | (outbox.c.lease_until < moment))
            ).scalar_one()
        )


def _dossier_to(conn: Connection, dossier_id: str, target: DossierState, now: datetime) -> None:
    current = conn.execute(
        select(dossier_table.c.state).where(dossier_table.c.dossier_id == dossier_id)
    ).scalar_one_or_none()
    if current is None:
        return  # a message about something that is not a dossier (later: signal files)
    state = DossierState(current)
    path = {
        DossierState.AFGELEVERD: [DossierState.VERZONDEN, DossierState.AFGELEVERD],
        DossierState.DEAD_LETTER: [DossierState.DEAD_LETTER],
        DossierState.IN_OUTBOX: [DossierState.IN_OUTBOX],
    }[target]
    for step in path:
        if state is step:
            continue
        state = DOSSIER.transition(state, step)
    conn.execute(
        update(dossier_table)
        .where(dossier_table.c.dossier_id == dossier_id)
        .values(state=state.value, updated_at=now)
    )


def deliver_due(
    ctx: HubContext,
    route: Route,
    transport: DeliveryTransport,
    *,
    policy: RetryPolicy = RetryPolicy(),  # noqa: B008 (a frozen value)
    limit: int = 200,
    lease: timedelta = timedelta(minutes=10),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DeliveryReport:
    """One round for one receiver; see the module docstring."""
    report = DeliveryReport(route.recipient)
    with ctx.engine.begin() as conn:
        items = Outbox(conn, now()).claim(route.recipient, limit=limit, lease=lease)
    report.claimed = len(items)
    if not items:
        return report
    _failpoint("claimed")
    messages = [Outgoing(i.message_id, i.object_ref, i.payload, i.payload_sha256) for i in items]
    try:
        results = transport.send(route, messages)
    except RetryableDeliveryError as exc:
        results = [SendResult(m.message_id, False, True, str(exc)) for m in messages]
    except ConfigurationError as exc:
        # Nothing was sent: the messages wait (not dead letters; a person fixes the route).
        _settle(
            ctx,
            items,
            [SendResult(m.message_id, False, True, str(exc)) for m in messages],
            policy,
            now(),
            report,
        )
        raise
    _failpoint("sent")
    _settle(ctx, items, results, policy, now(), report)
    return report


def _settle(
    ctx: HubContext,
    items: Sequence[OutboxItem],
    results: Sequence[SendResult],
    policy: RetryPolicy,
    moment: datetime,
    report: DeliveryReport,
) -> None:
    by_id = {i.message_id: i for i in items}
    answered = {r.message_id for r in results}
    # A transport that forgot a message: treat it as a transient failure, never as delivered.
    missing = [
        SendResult(i.message_id, False, True, "no result from the transport")
        for i in items
        if i.message_id not in answered
    ]
    with ctx.engine.begin() as conn:
        box = Outbox(conn, moment)
        for result in [*results, *missing]:
            item = by_id.get(result.message_id)
            if item is None:
                continue  # not ours in this round
            if result.delivered:
                box.delivered(result.message_id, receipt=result.detail)
                if item.kind == SIGNAL_FILE_KIND:  # the municipality has the file: delivered
                    file_id = item.object_ref.removesuffix(".xml")
                    closed = mark_delivered(conn, file_id, moment)
                    AuditLog(conn, fixed_clock(moment)).append(
                        AuditEvent("overstap delivery", "signals.delivered", "signal_file",
                                   file_id, origin=f"delivery:{item.recipient}",
                                   detail={"signals": closed, "message": result.message_id})
                    )  # fmt: skip
                _dossier_to(conn, item.object_ref, DossierState.AFGELEVERD, moment)
                report.delivered += 1
                continue
            state = box.failed(
                result.message_id, result.detail, retryable=result.retryable, policy=policy
            )
            report.details[result.message_id] = result.detail[:200]
            if state is DeliveryState.DEAD_LETTER:
                _dossier_to(conn, item.object_ref, DossierState.DEAD_LETTER, moment)
                report.dead_letter += 1
            else:
                report.retrying += 1


def replay(ctx: HubContext, message_id: str) -> None:
    """A dead letter goes back to the outbox with its MessageID; its dossier with it."""
    moment = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        box = Outbox(conn, moment)
        box.replay(message_id)
        row = box.item(message_id)
        _dossier_to(conn, row.object_ref, DossierState.IN_OUTBOX, moment)
