"""Which school pulls from where (`sis_source`), and running a pull by school location.

Sources are configuration: the region registry (issue: yearly cycle) or, for a synthetic region,
its `sis/<location>/` export folders. Connector settings never hold a secret itself, only where
to find it (a key file path, an Airflow Connection id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, bindparam, select

from overstap.bootstrap import HubContext
from overstap.domain.calendar import SchoolYear
from overstap.domain.errors import ConfigurationError
from overstap.ports import SisConnector, SisSchool
from overstap.region.model import load_region
from overstap.store.tables import sis_source, vo_school
from overstap.store.upsert import upsert

if TYPE_CHECKING:
    from overstap.services.sis_pull import PullReport


def save_sources(ctx: HubContext, sources: Iterable[SisSchool]) -> None:
    """Create or replace the SIS source of each school (the watermark is kept)."""
    with ctx.engine.begin() as conn:
        save_source_rows(conn, sources)


def save_source_rows(conn: Connection, sources: Iterable[SisSchool]) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "school": s.location,
            "connector": s.connector,
            "mapping": s.mapping,
            "settings": dict(s.settings),
            "updated_at": now,
        }
        for s in sources
    ]
    upsert(conn, sis_source, rows, keys=["school"])


def region_sources(region_dir: Path) -> list[SisSchool]:
    """A synthetic region's schools, each reading its own export folder with its SIS's mapping."""
    region = load_region(region_dir)
    folder = str(Path(region_dir).resolve() / "sis" / "{location}")
    return [
        SisSchool(str(s.location), s.sis, "file", {"folder": folder}) for s in region.vo_schools
    ]


def configured_locations(ctx: HubContext) -> list[str]:
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        return list(
            conn.execute(select(sis_source.c.school).order_by(sis_source.c.school)).scalars()
        )


def source_for(ctx: HubContext, location: str) -> SisSchool:
    return source_and_watermark(ctx, location)[0]


# Built once: run once per pull, and building a statement costs more than running it.
_SOURCE = select(sis_source).where(sis_source.c.school == bindparam("p_location"))


def source_and_watermark(ctx: HubContext, location: str) -> tuple[SisSchool, str | None]:
    """The school's SIS source and how far its last successful pull got (one query)."""
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        row = conn.execute(_SOURCE, {"p_location": location}).first()
    if row is None:
        raise ConfigurationError(
            f"sis source {location}", "no SIS is configured for this school location"
        )
    return SisSchool(row.school, row.mapping, row.connector, dict(row.settings)), row.watermark


def current_school_year(ctx: HubContext, location: str) -> SchoolYear:
    """The school year the pulled students are in: today's, unless the region says otherwise."""
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        known = conn.execute(
            select(vo_school.c.location).where(vo_school.c.location == location)
        ).first()
    if known is None:
        raise ConfigurationError(f"school {location}", "is not in the registry (load the region)")
    return SchoolYear.containing(datetime.now(UTC).date())


def run_pull(
    ctx: HubContext,
    location: str,
    connectors: Callable[[str], SisConnector],
    *,
    school_year: SchoolYear | None = None,
    progress: Callable[[int], None] | None = None,
    resolve: Callable[[SisSchool], SisSchool] = lambda source: source,
) -> PullReport:
    """Pull one school; `resolve` fills in settings kept elsewhere (an Airflow Connection)."""
    # Imported here: registering sources (region load) must not load the mapping machinery.
    from overstap.services.sis_pull import pull_school

    source, since = source_and_watermark(ctx, location)
    year = school_year or current_school_year(ctx, location)
    return pull_school(
        ctx,
        resolve(source),
        connectors(source.connector),
        school_year=year,
        progress=progress,
        since=since,
    )


def check_source(
    ctx: HubContext,
    location: str,
    connectors: Callable[[str], SisConnector],
    resolve: Callable[[SisSchool], SisSchool] = lambda source: source,
) -> dict[str, str | None]:
    """A pull's dry run: the school's source is configured, its settings resolve, its connector
    and mapping exist. Nothing is read from the SIS and nothing is written."""
    from mappings.sis_mapping import load_mapping

    source, watermark = source_and_watermark(ctx, location)
    resolve(source)
    connectors(source.connector)
    load_mapping(source.mapping)
    return {
        "school": location,
        "connector": source.connector,
        "mapping": source.mapping,
        "watermark": watermark,
    }
