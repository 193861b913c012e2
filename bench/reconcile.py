"""Benchmark: reconcile N registration status reports (5% misfits) against N students.

Issue 6 target: 150,000 reports in at most 10 s including the state-machine updates (an indexed
join of the raw pairs takes about 0.3 s here).

Run: `.venv/bin/python bench/reconcile.py [--students N]`
Setup (not timed, cached in $TMPDIR/overstap-bench): a synthetic region loaded into a SQLite hub
(students and their dossiers, marked delivered). Timed: `overstap.services.reconcile.reconcile`
over one report per applying student (the first status its scenario holds), every 20th one
spoiled: an unknown number (a work item), an institution the student never applied to
(applied and flagged), or a deregistration as the first news (a forward skip).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from datetime import time as day_time
from pathlib import Path

TARGET_SECONDS = 10.0


def _hub_copy(students: int, seed: int, work: Path) -> tuple[Path, Path]:
    from sqlalchemy import update

    from overstap.bootstrap import HubContext
    from overstap.region.generate import generate_region
    from overstap.services.region_load import load_region_into_hub
    from overstap.store.tables import dossier

    cache = Path(tempfile.gettempdir()) / "overstap-bench" / f"reconcile-{students}-{seed}"
    region_dir, home = cache / "region", cache / "home"
    if not (home / "ready").exists():
        shutil.rmtree(home, ignore_errors=True)
        if not (region_dir / "students.jsonl").exists():
            print(f"setup: generating a region of {students:,} students")
            generate_region(region_dir, students=students, seed=seed)
        print("setup: loading it into a hub (once; cached)")
        ctx = HubContext.open({"OVERSTAP_HOME": str(home)}, migrate=True)
        load_region_into_hub(ctx, region_dir)
        with ctx.engine.begin() as conn:
            conn.execute(update(dossier).values(state="afgeleverd"))
        ctx.close()
        (home / "ready").write_text("ok")
    target = work / "home"
    shutil.copytree(home, target)
    return region_dir, target


def _reports(region_dir: Path) -> list[object]:
    from overstap.domain.identifiers import Bsn, elfproef_remainder
    from overstap.domain.registration import StatusReport
    from overstap.domain.states import RegistrationStatus
    from overstap.region.model import iter_students, load_region

    region = load_region(region_dir)
    other = [i.brin for i in region.mbo_institutions]
    spare = (str(n) for n in range(900000000, 999999999) if elfproef_remainder(str(n)) == 0)
    reports: list[object] = []
    for record in iter_students(region_dir):
        events = record.scenario.status_dates
        if not events:
            continue
        event = events[0]
        report = StatusReport(
            message_id=f"BENCH-{len(reports)}",
            sent_at=datetime.combine(event.date, day_time(12), tzinfo=UTC),
            mbo=event.brin,
            vo=record.student.school.brin,
            identifier=record.student.identifier,
            status=event.status,
            status_date=event.date,
            leerlingid=record.student.leerlingid,
        )
        n = len(reports)
        if n % 20 == 0:  # 5% misfits of three kinds
            kind = (n // 20) % 3
            if kind == 0:
                report = replace(report, identifier=Bsn(next(spare)))
            elif kind == 1:
                report = replace(report, mbo=next(b for b in other if b != event.brin))
            else:
                report = replace(report, status=RegistrationStatus.UITGESCHREVEN)
        reports.append(report)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from overstap.bootstrap import HubContext
    from overstap.services.reconcile import reconcile

    with tempfile.TemporaryDirectory() as tmp:
        region_dir, home = _hub_copy(args.students, args.seed, Path(tmp))
        reports = _reports(region_dir)
        ctx = HubContext.open({**os.environ, "OVERSTAP_HOME": str(home)})
        started = time.perf_counter()
        result = reconcile(ctx, reports, channel="sftp")  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        again_started = time.perf_counter()
        again = reconcile(ctx, reports, channel="soap")  # type: ignore[arg-type]
        again_seconds = time.perf_counter() - again_started
        ctx.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"reports           {result.reports:,}")
    print(f"outcomes          {dict(result.outcomes)}")
    print(f"work items        {dict(result.work_items)}")
    print(f"reconcile         {seconds:.1f} s ({result.reports / seconds:,.0f} reports/s)")
    print(
        f"same stream again {again_seconds:.1f} s (all duplicates: {again.outcomes['duplicate']:,})"
    )
    print(f"peak RSS          {rss:.0f} MB")
    print(
        f"ratio to target   {seconds / (TARGET_SECONDS * result.reports / 150_000):.2f} (target {TARGET_SECONDS:.0f} s for 150,000)"
    )


if __name__ == "__main__":
    main()
