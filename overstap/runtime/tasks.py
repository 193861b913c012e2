"""What Airflow tasks call: the one module of `overstap` that imports Airflow (ARCHITECTURE.md).

DAG files stay thin: one call into this module per task. Here the hub's error taxonomy becomes
Airflow outcomes, in one place:
- `RetryableDeliveryError` (and anything unexpected) -> the task fails and Airflow retries it;
- `ConfigurationError`, `RejectedByRecipient` -> `AirflowFailException`: no retry, a person must act.
Tasks return ids and counts only (XCom never carries personal data).

Nothing here runs at import: DAG parsing must not touch the database or the network.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from overstap.domain.errors import ConfigurationError, RejectedByRecipient

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def airflow_outcome(fn: Callable[P, R]) -> Callable[P, R]:
    """Translate the hub's permanent errors into a failure Airflow does not retry."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (ConfigurationError, RejectedByRecipient) as exc:
            raise AirflowFailException(str(exc)) from exc

    return wrapper


def record_failure(context: Mapping[str, Any]) -> None:
    """`on_failure_callback` of every hub task: the failure goes into the audit chain (which
    task, which run, which try, the error's type and, for the hub's own errors, its message,
    which never holds personal data), so an auditor sees failed exchanges beside the
    successful ones. It must never raise: a callback error would hide the task's own."""
    try:
        from overstap.audit.chain import AuditEvent
        from overstap.bootstrap import HubContext
        from overstap.domain.errors import OverstapError
        from overstap.store.audit_log import AuditLog

        ti = context["ti"]
        error = context.get("exception")
        cause = error.__cause__ if isinstance(error, AirflowFailException) else error
        detail: dict[str, object] = {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "map_index": ti.map_index,
            "try_number": ti.try_number,
            "error": type(cause).__name__ if cause is not None else None,
        }
        if isinstance(cause, OverstapError):
            detail["reason"] = str(cause)[:500]
        ctx = HubContext.open()
        try:
            with ctx.engine.begin() as conn:
                AuditLog(conn).append(
                    AuditEvent(
                        "airflow",
                        "airflow.task_failed",
                        "task",
                        f"{ti.dag_id}.{ti.task_id}",
                        result="failed",
                        detail=detail,
                    )
                )
        finally:
            ctx.close()
    except Exception:  # the callback's own failure is logged, never raised
        log.exception("could not record the task failure in the audit chain")


@airflow_outcome
def sis_schools() -> list[str]:
    """Every school location with a configured SIS source (the mapped task's input)."""
    from overstap.bootstrap import HubContext
    from overstap.services.sis_sources import configured_locations

    ctx = HubContext.open()
    try:
        return configured_locations(ctx)
    finally:
        ctx.close()


@airflow_outcome
def pull_school(location: str, day: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """One school's pull, for the school year of `day` (the run's logical date, so a backfill
    pulls into the year it replays); returns counts for the task log and XCom."""
    from datetime import date

    from overstap.bootstrap import HubContext
    from overstap.domain.calendar import SchoolYear
    from overstap.runtime.connections import resolve_source
    from overstap.runtime.wiring import sis_connector
    from overstap.services.sis_sources import run_pull

    year = SchoolYear.containing(date.fromisoformat(day)) if day else None
    ctx = HubContext.open()
    if dry_run:  # the source is configured, its connector and mapping exist: nothing is read
        from overstap.services.sis_sources import check_source

        try:
            return {"dry_run": True, **check_source(ctx, location, sis_connector, resolve_source)}
        finally:
            ctx.close()
    try:
        report = run_pull(ctx, location, sis_connector, school_year=year, resolve=resolve_source)
    finally:
        ctx.close()
    return report.counts()


@airflow_outcome
def queue_dossiers(day: str, dry_run: bool = False) -> dict[str, int]:
    """Approve what may be approved on `day` and queue every approved, valid dossier (with
    `dry_run`, count what would be approved and queued)."""
    import os
    from datetime import date

    from overstap.bootstrap import HubContext
    from overstap.pki.devca import passphrase_from
    from overstap.services.outbox import approve_dossiers
    from overstap.services.outbox import queue_dossiers as queue

    ctx = HubContext.open()
    if dry_run:  # the key and passphrase the queue signs with, then the counts
        from overstap.services.outbox import plan_approvals
        from overstap.services.pki import hub_signer

        try:
            hub_signer(ctx.settings.pki_dir, passphrase_from(ctx.settings.pki_dir, os.environ))
            return plan_approvals(ctx, today=date.fromisoformat(day))
        finally:
            ctx.close()
    try:
        today = date.fromisoformat(day)
        approval = approve_dossiers(ctx, today=today)
        pki_dir = ctx.settings.pki_dir
        queued = queue(
            ctx, today=today, pki_dir=pki_dir, passphrase=passphrase_from(pki_dir, os.environ)
        )
    finally:
        ctx.close()
    return {
        "approved": approval.approved,
        "refused": approval.refused,
        "waiting": approval.waiting,
        "queued": queued.queued,
        "held": queued.held,
    }


@airflow_outcome
def delivery_recipients() -> list[str]:
    from overstap.bootstrap import HubContext
    from overstap.services.delivery import recipients_with_due

    ctx = HubContext.open()
    try:
        return recipients_with_due(ctx)
    finally:
        ctx.close()


@airflow_outcome
def deliver(recipient: str, dry_run: bool = False) -> dict[str, int | str]:
    """One delivery round to one institution. Messages that failed wait in the outbox with
    their own backoff; the task fails only on a configuration problem (no Airflow retry
    would help a message the receiver refused: it is a dead letter, visible in the outbox)."""
    from overstap.bootstrap import HubContext
    from overstap.runtime.connections import resolve_route
    from overstap.runtime.wiring import delivery_transport
    from overstap.services.delivery import deliver_due, route_for

    ctx = HubContext.open()
    if dry_run:  # the route resolves and its transport exists; nothing is sent
        from overstap.services.delivery import due_count

        try:
            route = resolve_route(route_for(ctx, recipient))
            delivery_transport(route.transport)
            return {"recipient": recipient, "dry_run": 1, "due": due_count(ctx, recipient)}
        finally:
            ctx.close()
    try:
        route = resolve_route(route_for(ctx, recipient))
        report = deliver_due(ctx, route, delivery_transport(route.transport))
    finally:
        ctx.close()
    return {
        "recipient": recipient,
        "claimed": report.claimed,
        "delivered": report.delivered,
        "retrying": report.retrying,
        "dead_letter": report.dead_letter,
    }


@airflow_outcome
def sftp_intake_recipients() -> list[str]:
    """Institutions that leave status files on SFTP (the mapped intake task's input)."""
    from overstap.bootstrap import HubContext
    from overstap.services.status_files import sftp_recipients

    ctx = HubContext.open()
    try:
        return sftp_recipients(ctx)
    finally:
        ctx.close()


@airflow_outcome
def take_in_statuses(recipient: str, dry_run: bool = False) -> dict[str, int | str]:
    """Take in one institution's status files. A rejected file is archived and counted, not a
    task failure: it is in the audit chain for a person; the task fails only when the folder
    cannot be reached (retried) or is misconfigured (not retried)."""
    from overstap.bootstrap import HubContext
    from overstap.runtime.connections import resolve_route
    from overstap.runtime.wiring import status_inbox
    from overstap.services.delivery import route_for
    from overstap.services.status_files import take_in

    ctx = HubContext.open()
    try:
        route = resolve_route(route_for(ctx, recipient))
        if dry_run:  # the folder is reachable; files are listed and read, not taken in
            waiting = status_inbox(route.transport).pending(route)
            return {"recipient": recipient, "dry_run": 1, "waiting": len(waiting)}
        report = take_in(ctx, route, status_inbox(route.transport))
    finally:
        ctx.close()
    return report.counts()


@airflow_outcome
def raise_signals(day: str, dry_run: bool = False) -> dict[str, object]:
    """Raise and withdraw the signals of `day` (the run's logical date, so a backfill replays
    the school year as it happened)."""
    from datetime import date

    from overstap.bootstrap import HubContext
    from overstap.services.signals import run_signals

    ctx = HubContext.open()
    try:
        if dry_run:
            from overstap.services.signals import plan_signals

            return {**plan_signals(ctx, date.fromisoformat(day)).counts(), "dry_run": True}
        return run_signals(ctx, date.fromisoformat(day)).counts()
    finally:
        ctx.close()


@airflow_outcome
def queue_signal_files(day: str, dry_run: bool = False) -> dict[str, object]:
    """One file per municipality with news into the outbox (signed, encrypted); with `dry_run`
    the hub's key is loaded and the municipalities with news are counted and checked."""
    import os
    from datetime import date

    from overstap.bootstrap import HubContext
    from overstap.pki.devca import passphrase_from
    from overstap.services.signal_files import queue_with_hub_pki

    ctx = HubContext.open()
    try:
        pki_dir = ctx.settings.pki_dir
        if dry_run:
            from overstap.services.signal_files import plan_files

            return {"dry_run": True, **plan_files(ctx, passphrase_from(pki_dir, os.environ))}
        report = queue_with_hub_pki(
            ctx, date.fromisoformat(day), passphrase_from(pki_dir, os.environ)
        )
        return report.counts()
    finally:
        ctx.close()


@airflow_outcome
def audit_checkpoint(dry_run: bool = False) -> dict[str, object]:
    """Sign the audit chain head (nothing when nothing happened since the last checkpoint)."""
    if dry_run:  # the signing key must load; the head is read, nothing signed
        import os

        from sqlalchemy import func, select

        from overstap.bootstrap import HubContext
        from overstap.pki.devca import passphrase_from
        from overstap.services.pki import hub_signer
        from overstap.store.tables import audit_checkpoint as signed
        from overstap.store.tables import audit_head

        ctx = HubContext.open()
        try:
            hub_signer(ctx.settings.pki_dir, passphrase_from(ctx.settings.pki_dir, os.environ))
            with ctx.engine.connect().execution_options(read_only=True) as conn:
                seq = conn.execute(select(audit_head.c.seq)).scalar()
                last = conn.execute(select(func.max(signed.c.seq))).scalar()
        finally:
            ctx.close()
        return {"dry_run": True, "head": seq, "would_sign": seq is not None and seq != last}
    import os

    from overstap.bootstrap import HubContext
    from overstap.pki.devca import passphrase_from
    from overstap.services.audit_checkpoints import make_checkpoint
    from overstap.services.pki import hub_signer

    ctx = HubContext.open()
    try:
        pki_dir = ctx.settings.pki_dir
        made = make_checkpoint(ctx, hub_signer(pki_dir, passphrase_from(pki_dir, os.environ)))
    finally:
        ctx.close()
    if made is None:
        return {"checkpoint": None}
    return {"checkpoint": made.checkpoint.seq, "hash": made.checkpoint.hash}
