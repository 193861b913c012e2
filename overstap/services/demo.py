"""`make demo`: the main job on embedded defaults, from nothing to a verified audit chain.

At this stage: synthetic region -> development PKI -> migrated SQLite store -> region loaded with
an audit record per student and dossier -> every dossier built, checked, signed and encrypted
(not sent yet) -> audit chain verified -> summary. Re-running reuses what exists:
the PKI is not re-keyed and the load changes nothing the second time.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from overstap.bootstrap import HubContext
from overstap.cli.progress import progress_bar
from overstap.domain.calendar import SchoolCalendar, SchoolYear, age_on
from overstap.pki.devca import passphrase_from
from overstap.region.generate import generate_region
from overstap.services.dossier_pipeline import PipelineConfig, process_dossiers, registry_envelopes
from overstap.services.pki import issue_dev_pki
from overstap.services.region_load import load_region_into_hub
from overstap.store import migrate
from overstap.store.audit_log import AuditLog
from overstap.store.dossiers import iter_dossiers
from overstap.store.tables import mbo_institution, municipality, student, vo_school


@contextmanager
def _step(console: Console, title: str) -> Iterator[None]:
    started = time.perf_counter()
    console.print(f"[bold cyan]>[/] {title}")
    yield
    console.print(f"  done in {time.perf_counter() - started:.1f} s")


def run_demo(console: Console, *, students: int, seed: int) -> int:
    # The demo migrates (below, as a visible step) so it starts from an empty home.
    ctx = HubContext.open(require_schema=False)
    settings = ctx.settings
    region_dir = settings.home / "regions" / f"demo-{seed}-{students}"
    console.rule("[bold]Overstap demo")
    console.print(f"home {settings.home}, database {ctx.engine.url.render_as_string()}")

    title = f"generating a synthetic region of {students} students (seed {seed})"
    with _step(console, title), progress_bar("students", total=students) as advance:
        summary = generate_region(region_dir, students=students, seed=seed, progress=advance)
    with _step(console, "development PKI (PKIoverheid-shaped CA, certificates per party)"):
        layout, issued = issue_dev_pki(settings, region_dir)
        console.print(f"  {issued} certificates issued, trust store {layout.trust_bundle_path}")
    with _step(console, "migrating the hub's database"):
        migrate.upgrade(ctx.engine)
    loading = _step(console, "loading the region into the hub")
    with loading, progress_bar("students", total=students) as advance:
        loaded = load_region_into_hub(ctx, region_dir, progress=advance)
    year = SchoolYear.parse(summary.school_year)
    on = SchoolCalendar(year).registration_deadline
    title = f"building every dossier as on {on}: XML, schema, profile rules, signature, CMS"
    with _step(console, title):
        built = _build_dossiers(ctx, on, layout.root)
    with _step(console, "verifying the audit chain"), ctx.engine.connect() as conn:
        report = AuditLog(conn).verify()

    console.print(_summary_table(ctx, year))
    console.print(
        f"loaded: {loaded.created} new, {loaded.updated} changed, {loaded.unchanged} unchanged, "
        f"{loaded.dossiers_created} dossiers new, {loaded.dossiers_updated} changed; "
        f"{loaded.audit_records} audit records written"
    )
    console.print(built)
    if report.problem is not None:
        console.print(f"[bold red]audit chain BROKEN[/] at record {report.problem}")
        return 1
    console.print(
        f"[bold green]audit chain OK[/]: {report.count} records, head {report.head_hash[:16]}"
    )
    console.print(
        "Look further: `.venv/bin/overstap audit verify`, `.venv/bin/overstap certs status`, "
        f"the region files in {region_dir}."
    )
    ctx.close()
    return 0


@dataclass
class _Built:
    ready: int = 0
    held: int = 0
    rules: Counter[str] = field(default_factory=Counter)  # dossiers held back per rule
    seconds: float = 0.0

    def __rich__(self) -> str:
        rate = (self.ready + self.held) / self.seconds if self.seconds else 0.0
        reasons = ", ".join(f"{rule} {n}" for rule, n in self.rules.most_common())
        return (
            f"dossiers: {self.ready} ready to send (signed, encrypted), {self.held} held back"
            + (f" (by rule: {reasons})" if reasons else "")
            + f"; {rate:,.0f} dossiers/s"
        )


def _build_dossiers(ctx: HubContext, on: date, pki_dir: Path) -> _Built:
    """The dossier pipeline over the store, as the delivery flow will run it (no sending yet)."""
    config = PipelineConfig(pki_dir, passphrase_from(pki_dir, os.environ), on)
    built = _Built()
    started = time.perf_counter()
    with ctx.engine.connect() as conn:
        envelope = registry_envelopes(conn)
        items = ((d, envelope(d)) for d in iter_dossiers(conn))
        for outcome in process_dossiers(items, config, workers=2):
            if outcome.ok:
                built.ready += 1
            else:
                built.held += 1
                built.rules.update(set(outcome.rules))
    built.seconds = time.perf_counter() - started
    return built


def _summary_table(ctx: HubContext, year: SchoolYear) -> Table:
    deadline = SchoolCalendar(year).registration_deadline
    with ctx.engine.connect() as conn:
        count: Callable[..., int] = lambda q: int(conn.execute(q).scalar_one())  # noqa: E731
        n = count(select(func.count()).select_from(student))
        births: list[date] = list(conn.execute(select(student.c.geboortedatum)).scalars())
        rows = [
            ("students", n),
            ("  in the leaving year", count(select(func.count()).where(student.c.leaving_year))),
            (
                "  with onderwijsnummer instead of BSN",
                count(select(func.count()).where(student.c.onderwijsnummer.is_not(None))),
            ),
            ("  with a secret address", count(select(func.count()).where(student.c.adres_geheim))),
            (
                f"  adult (18+) on the deadline {deadline}",
                sum(age_on(b, deadline) >= 18 for b in births),
            ),
            ("vo school locations", count(select(func.count()).select_from(vo_school))),
            ("mbo institutions", count(select(func.count()).select_from(mbo_institution))),
            ("municipalities", count(select(func.count()).select_from(municipality))),
        ]
    table = Table("region", "count", title="What the hub now holds")
    for label, value in rows:
        table.add_row(label, f"{value:,}")
    return table
