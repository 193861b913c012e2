"""A synthetic region in a test hub, and its year of registration statuses as the mbo sends them:
shared by the known-truth tests (reports, signals)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

from sqlalchemy import Engine, update

from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.domain.registration import StatusReport
from overstap.region import iter_students
from overstap.services.region_load import load_region_into_hub
from overstap.store.tables import dossier


def region_hub(engine: Engine, tmp_path: Path, region_dir: Path) -> HubContext:
    """The region loaded into the hub, its dossiers delivered (statuses may refer to them)."""
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )
    load_region_into_hub(ctx, region_dir)
    with engine.begin() as conn:
        conn.execute(update(dossier).values(state="afgeleverd"))
    return ctx


def year_of_statuses(region_dir: Path, prefix: str) -> list[StatusReport]:
    """Every status the scenarios hold, in region order. Message ids are opaque counters, like a
    real MessageID (they land in the audit trail); the mbo's clock keeps a day's events in the
    scenario's order."""
    reports: list[StatusReport] = []
    for record in iter_students(region_dir):
        s = record.student
        for n, event in enumerate(record.scenario.status_dates):
            reports.append(
                StatusReport(
                    message_id=f"{prefix}-{len(reports)}",
                    sent_at=datetime.combine(event.date, time(12, 0, n), tzinfo=UTC),
                    mbo=event.brin,
                    vo=s.school.brin,
                    identifier=s.identifier,
                    status=event.status,
                    status_date=event.date,
                    leerlingid=s.leerlingid,
                )
            )
    return reports
