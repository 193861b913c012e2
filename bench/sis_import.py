"""Benchmark: import N students from SIS file exports (issue 4 target: >= 20,000 rows/s with
validation and quarantine, memory flat in N; a bulk insert through SQLAlchemy does about 75,000).

Run: `.venv/bin/python bench/sis_import.py [--students N] [--database URL]`
The region (its per-school CSV exports in both dialects) is generated once and cached in
$TMPDIR/overstap-bench (not timed). Timed: a first pull of every school into an empty hub
(parse, map, validate, de-duplicate, upsert, audit, quarantine), then a second pull of changed
exports (every export re-written, so nothing is skipped) that must change nothing. About 1% of
the rows are corrupted on purpose so the quarantine path is measured too.
Prints rows/s for both, peak RSS, and the ratio to the target.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

TARGET_ROWS_PER_S = 20_000


def _region(students: int, seed: int) -> Path:
    from overstap.region.generate import generate_region

    cache = Path(tempfile.gettempdir()) / "overstap-bench" / f"region-{students}-{seed}"
    if not (cache / "students.jsonl").exists():
        print(f"setup: generating a region of {students:,} students (cached in {cache})")
        generate_region(cache, students=students, seed=seed)
    return cache


def _corrupt_copy(region: Path, out: Path, every: int) -> int:
    """Copy the exports, giving every `every`-th data row one column too many."""
    broken = 0
    for src in sorted((region / "sis").glob("*/leerlingen.csv")):
        lines = src.read_bytes().split(b"\r\n")
        extra = b";x" if b";" in lines[0] else b",x"  # the dialect's own separator
        for i in range(1, len(lines)):
            if lines[i] and i % every == 0:
                lines[i] += extra
                broken += 1
        target = out / src.parent.name / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\r\n".join(lines))
    return broken


_ctx: object = None


def _init_worker(env: dict[str, str]) -> None:
    global _ctx
    from overstap.bootstrap import HubContext

    _ctx = HubContext.open(env)


def _pull_one(location: str, start_year: int) -> tuple[int, int, int]:
    from overstap.domain.calendar import SchoolYear
    from overstap.runtime.wiring import sis_connector
    from overstap.services.sis_sources import run_pull

    report = run_pull(_ctx, location, sis_connector, school_year=SchoolYear(start_year))  # type: ignore[arg-type]
    assert report.balanced, location
    return report.records_in, report.imported, report.quarantined


def _pull_all(
    env: dict[str, str], locations: list[str], start_year: int, workers: int
) -> tuple[int, int, int, float]:
    """Pull every school, `workers` schools at a time in their own processes (as the DAG's
    mapped tasks do); parsing and mapping run in parallel, the database serialises writes."""
    rows = imported = quarantined = 0
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(env,)
    ) as pool:
        pool.submit(int).result()  # workers up before the clock starts
        started = time.perf_counter()
        for r, i, q in pool.map(_pull_one, locations, [start_year] * len(locations)):
            rows += r
            imported += i
            quarantined += q
        return rows, imported, quarantined, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    from overstap.bootstrap import HubContext
    from overstap.ports import SisSchool
    from overstap.region.model import load_region
    from overstap.services.sis_sources import save_sources
    from overstap.store import migrate
    from overstap.store.students import save_parties

    region_dir = _region(args.students, args.seed)
    region = load_region(region_dir)
    with tempfile.TemporaryDirectory() as tmp:
        exports = Path(tmp) / "sis"
        broken = _corrupt_copy(region_dir, exports, every=97)
        env = {**os.environ, "OVERSTAP_HOME": str(Path(tmp) / "home")}
        if args.database:
            env["OVERSTAP_DATABASE_URL"] = args.database
        ctx = HubContext.open(env, require_schema=False)
        migrate.upgrade(ctx.engine)
        with ctx.engine.begin() as conn:
            save_parties(
                conn,
                region.regions,
                region.municipalities,
                region.vo_schools,
                region.mbo_institutions,
            )
        locations = [str(s.location) for s in region.vo_schools]
        save_sources(
            ctx,
            [
                SisSchool(str(s.location), s.sis, "file", {"folder": str(exports / "{location}")})
                for s in region.vo_schools
            ],
        )
        year = region.school_year.start_year
        first = _pull_all(env, locations, year, args.workers)
        # Touch every export (same content, new bytes at the end) so no pull is skipped.
        for path in exports.glob("*/leerlingen.csv"):
            path.write_bytes(path.read_bytes() + b"\r\n")
        second = _pull_all(env, locations, year, args.workers)
        ctx.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    for label, (rows, imported, quarantined, seconds) in (
        ("first pull", first),
        ("second pull", second),
    ):
        print(
            f"{label:12s} {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s "
            f"({imported:,} imported, {quarantined:,} quarantined)"
        )
    print(f"corrupted rows    {broken:,} (expected in quarantine each pull)")
    print(f"peak RSS          {rss:.0f} MB (main), {worker_rss:.0f} MB (largest worker)")
    print(f"workers           {args.workers}")
    rate = first[0] / first[3]
    print(
        f"ratio to target   {TARGET_ROWS_PER_S / rate:.2f} (target {TARGET_ROWS_PER_S:,} rows/s; below 1.0 meets it)"
    )


if __name__ == "__main__":
    main()
