"""Apply a region registry to the hub: parties, calendar, SIS sources and routes, audited.

The registry file is the source of truth for how parties are reached: a source or route that
the file no longer names is removed (parties stay: dossiers, signals and the audit trail refer
to them). Applying the same file twice changes nothing and says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, Connection, Table, delete, select, update

from overstap.audit.chain import AuditEvent
from overstap.bootstrap import HubContext
from overstap.pki import PkiLayout
from overstap.registry import Registry
from overstap.services.delivery import route_rows
from overstap.services.sis_sources import save_source_rows
from overstap.store.audit_log import AuditLog
from overstap.store.signals import save_calendar
from overstap.store.students import save_parties
from overstap.store.tables import delivery_route, municipality_route, sis_source
from overstap.store.upsert import upsert

ACTOR = "overstap registry apply"


@dataclass(frozen=True)
class ApplyResult:
    region: str
    digest: str  # sha256 of the registry file as applied
    sources: int
    institution_routes: int
    municipality_routes: int
    removed: int  # sources and routes the file no longer names
    changed: bool


def apply_registry(ctx: HubContext, registry: Registry) -> ApplyResult:
    region = registry.region
    digest = hashlib.sha256(registry.source.read_bytes()).hexdigest()
    now = datetime.now(UTC)
    with ctx.engine.begin() as conn:
        before = _snapshot(conn)
        save_parties(
            conn, region.regions, region.municipalities, region.vo_schools, region.mbo_institutions
        )
        save_calendar(conn, region.calendar)
        # A source that now points elsewhere (another connector, mapping or place) starts from
        # the beginning: the old watermark is a position in a different export.
        moved = _moved_sources(conn, registry)
        save_source_rows(conn, registry.sources)
        if moved:
            conn.execute(
                update(sis_source).where(sis_source.c.school.in_(moved)).values(watermark=None)
            )
        upsert(conn, delivery_route, route_rows(registry.institution_routes, "brin", now), ["brin"])
        upsert(
            conn,
            municipality_route,
            route_rows(registry.municipality_routes, "gemeente", now),
            ["gemeente"],
        )
        removed = _remove_others(conn, sis_source.c.school, {s.location for s in registry.sources})
        removed += _remove_others(
            conn, delivery_route.c.brin, {r.recipient for r in registry.institution_routes}
        )
        removed += _remove_others(
            conn, municipality_route.c.gemeente, {r.recipient for r in registry.municipality_routes}
        )
        changed = _snapshot(conn) != before
        if changed:
            AuditLog(conn).append(
                AuditEvent(
                    ACTOR,
                    "registry.applied",
                    "region",
                    region.code,
                    detail={
                        "sha256": digest,
                        "sources": len(registry.sources),
                        "institution_routes": len(registry.institution_routes),
                        "municipality_routes": len(registry.municipality_routes),
                        "removed": removed,
                    },
                )
            )
    return ApplyResult(
        region.code,
        digest,
        len(registry.sources),
        len(registry.institution_routes),
        len(registry.municipality_routes),
        removed,
        changed,
    )


def _moved_sources(conn: Connection, registry: Registry) -> list[str]:
    wanted = {s.location: (s.connector, s.mapping, dict(s.settings)) for s in registry.sources}
    rows = conn.execute(
        select(
            sis_source.c.school, sis_source.c.connector, sis_source.c.mapping, sis_source.c.settings
        )
    )
    return [
        r.school
        for r in rows
        if r.school in wanted and wanted[r.school] != (r.connector, r.mapping, dict(r.settings))
    ]


def _snapshot(conn: Connection) -> tuple[object, ...]:
    """What apply may change, to tell a no-op (no audit record) from a change."""
    from overstap.store.tables import mbo_institution, municipality, school_calendar, vo_school

    tables: list[Table] = [
        sis_source, delivery_route, municipality_route, vo_school, mbo_institution, municipality,
        school_calendar,
    ]  # fmt: skip
    out: list[object] = []
    for table in tables:
        cols = [c for c in table.c if c.name not in ("updated_at", "watermark")]
        rows = conn.execute(select(*cols)).all()
        out.append(sorted(repr(tuple(r)) for r in rows))
    return tuple(out)


def _remove_others(conn: Connection, key: Column[str], keep: set[str]) -> int:
    stale = [k for k in conn.execute(select(key)).scalars() if k not in keep]
    if stale:
        conn.execute(delete(key.table).where(key.in_(stale)))
    return len(stale)


def certificate_problems(registry: Registry, pki_dir: Path) -> list[str]:
    """Parties the registry routes to whose certificates are not in `pki_dir`."""
    layout = PkiLayout(pki_dir)
    region = registry.region
    wanted = [("hub", "the hub")]
    wanted += [(f"vo-{s.location}", f"school {s.location}") for s in region.vo_schools]
    wanted += [
        (f"mbo-{r.recipient}", f"institution {r.recipient}") for r in registry.institution_routes
    ]
    wanted += [
        (f"gm-{r.recipient}", f"municipality {r.recipient}") for r in registry.municipality_routes
    ]
    return [
        f"{label}: no certificate in {layout.party_dir(slug)}"
        for slug, label in wanted
        if not layout.cert_path(slug, "sign").is_file()
        or not layout.cert_path(slug, "enc").is_file()
    ]
