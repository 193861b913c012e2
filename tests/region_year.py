"""A synthetic region in a test hub, and its year of registration statuses as the mbo sends them:
shared by the known-truth tests (reports, signals)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, update

from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.services.region_load import load_region_into_hub
from overstap.services.year import year_of_statuses
from overstap.store.tables import dossier

__all__ = ["region_hub", "year_of_statuses"]


def region_hub(engine: Engine, tmp_path: Path, region_dir: Path) -> HubContext:
    """The region loaded into the hub, its dossiers delivered (statuses may refer to them)."""
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )
    load_region_into_hub(ctx, region_dir)
    with engine.begin() as conn:
        conn.execute(update(dossier).values(state="afgeleverd"))
    return ctx
