"""Load a region directory into the hub: parties and students, idempotent, every change audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from overstap.audit.chain import AuditEvent
from overstap.batching import chunks
from overstap.bootstrap import HubContext
from overstap.domain.calendar import SchoolCalendar
from overstap.domain.signals import startkwalificatie_on
from overstap.domain.student import Address
from overstap.region.dossiers import scenario_dossier
from overstap.region.model import StudentRecord, iter_students, load_region
from overstap.services.sis_sources import region_sources, save_source_rows
from overstap.store.audit_log import AuditLog
from overstap.store.dossiers import save_dossiers
from overstap.store.signals import KnownFacts, save_calendar, save_facts
from overstap.store.students import save_parties, save_students

ACTOR = "overstap region load"


@dataclass(frozen=True)
class RegionLoadResult:
    region: str
    created: int
    updated: int
    unchanged: int
    audit_records: int
    dossiers_created: int = 0
    dossiers_updated: int = 0

    @property
    def students(self) -> int:
        return self.created + self.updated + self.unchanged


def load_region_into_hub(
    ctx: HubContext,
    directory: Path,
    *,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 2000,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RegionLoadResult:
    region = load_region(directory)
    origin = f"region:{region.code}"
    audited = 0
    with ctx.engine.begin() as conn:
        save_parties(
            conn, region.regions, region.municipalities, region.vo_schools, region.mbo_institutions
        )
        # Each school's SIS export folder, so `overstap sis pull` and the pull DAG can run.
        save_source_rows(conn, region_sources(directory))
        save_calendar(conn, region.calendar)
        AuditLog(conn, now).append(
            AuditEvent(
                ACTOR,
                "region.loaded",
                "region",
                region.code,
                origin=origin,
                detail={
                    "municipalities": len(region.municipalities),
                    "vo_schools": len(region.vo_schools),
                    "mbo_institutions": len(region.mbo_institutions),
                },
            )
        )
        audited += 1
    created = updated = unchanged = done = dossiers_created = dossiers_updated = 0
    # One transaction per batch: a crash loses at most the batch in flight, and a re-run
    # picks up where it stopped because the upsert is idempotent.
    for chunk in chunks(iter_students(directory), batch_size):
        with ctx.engine.begin() as conn:
            result = save_students(conn, [r.student for r in chunk], ctx.pseudonyms, now())
            records = AuditLog(conn, now).append_many(
                AuditEvent(
                    ACTOR,
                    "student.created" if change.created else "student.updated",
                    "student",
                    change.subject_key,
                    origin=origin,
                    detail={"school": change.school, "fields": list(change.fields)},
                )
                for change in result.changes
            )
            # What the schools' records say beyond the SIS columns (the signal rules read it).
            save_facts(conn, [f for r in chunk if (f := _facts(r, region.calendar)) is not None])
            # The dossier each applying student's school composes (parts A and B, inzage).
            dossiers = [d for r in chunk if (d := scenario_dossier(r, region)) is not None]
            saved = save_dossiers(conn, dossiers, now())
            if saved.unknown_student:  # cannot happen: the students were saved just above
                raise RuntimeError(f"{len(saved.unknown_student)} dossiers lost their student")
            records += AuditLog(conn, now).append_many(
                AuditEvent(ACTOR, kind, "dossier", dossier_id, origin=origin)
                for kind, ids in (
                    ("dossier.created", saved.created),
                    ("dossier.updated", saved.updated),
                )
                for dossier_id in ids
            )
        created += result.created
        updated += result.updated
        unchanged += result.unchanged
        dossiers_created += len(saved.created)
        dossiers_updated += len(saved.updated)
        audited += len(records)
        done += len(chunk)
        if progress:
            progress(done)
    return RegionLoadResult(
        region.code, created, updated, unchanged, audited, dossiers_created, dossiers_updated
    )


def _address(address: Address | None) -> tuple[str, str, str, str] | None:
    if address is None:
        return None
    return address.straat, address.huisnummer, address.postcode.value, address.plaats


def _facts(record: StudentRecord, calendar: SchoolCalendar) -> KnownFacts | None:
    """The record's signal facts, or None when it has none to store (most students)."""
    s, sc = record.student, record.scenario
    qualified = startkwalificatie_on(s.level, sc.exam, calendar)
    if sc.left_cohort is None and qualified is None and not sc.moves:
        return None
    return KnownFacts(
        str(s.school),
        s.leerlingid,
        sc.left_cohort,
        qualified,
        (str(s.gemeente), _address(s.address)),
        tuple((m.date, str(m.gemeente), _address(m.address)) for m in sc.moves),
    )
