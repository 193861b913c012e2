"""Benchmark: build, validate, check, sign and encrypt N dossiers from a synthetic region.

Issue 3 target: 150,000 dossiers in at most 60 s on 2 cores, which is at least 40% of the raw
RSA-2048 PKCS#1 v1.5 signing rate of `cryptography` on 10 KB inputs with the same number of
processes (measured in the same run), memory flat in N.

Run: `.venv/bin/python bench/dossier_pipeline.py [--students N] [--workers W]`
(`make bench` runs every benchmark). The region and a PKI for the hub and the region's mbo
institutions are generated once and cached in $TMPDIR/overstap-bench (not timed). The timed
part reads `students.jsonl` line by line; the workers turn lines into dossiers and dossiers
into encrypted payloads, which the parent counts and drops (sending is the delivery issue's).
Peak RSS is measured in a fresh child process so setup does not count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

TARGET_SECONDS = 60.0
TARGET_N = 150_000
TARGET_RAW_FRACTION = 0.40
PASSPHRASE = b"bench-passphrase-not-secret"


def _setup(students: int, seed: int) -> tuple[Path, Path]:
    from overstap.pki.devca import PartySpec, init_dev_pki
    from overstap.region.generate import generate_region
    from overstap.region.model import load_region
    from overstap.services.pki import hub_party

    cache = Path(tempfile.gettempdir()) / "overstap-bench" / f"dossiers-{students}-{seed}"
    region_dir, pki_dir = cache / "region", cache / "pki"
    if not (region_dir / "students.jsonl").exists():
        print(f"setup: generating a region of {students:,} students (cached in {cache})")
        generate_region(region_dir, students=students, seed=seed)
    region = load_region(region_dir)
    parties = [hub_party({})] + [
        PartySpec(slug=f"mbo-{i.brin}", name=i.name, oin=i.oin, kind="mbo")
        for i in region.mbo_institutions
    ]
    init_dev_pki(pki_dir, parties, PASSPHRASE)  # idempotent: issues only what is missing
    return region_dir, pki_dir


def _raw_sign_worker(seconds: float) -> int:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(65537, 2048)
    data = os.urandom(10 * 1024)
    done, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(50):
            key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        done += 50
    return done


def raw_signing_rate(workers: int, seconds: float = 4.0) -> float:
    """Signatures per second of `workers` processes signing 10 KB inputs in parallel."""
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        pool.submit(int).result()  # the pool is up before the clock starts
        started = time.perf_counter()
        total = sum(pool.map(_raw_sign_worker, [seconds] * workers))
        return total / (time.perf_counter() - started)


def _lines(path: Path) -> object:
    with path.open("rb") as fh:
        yield from fh


def run(region_dir: Path, pki_dir: Path, workers: int) -> dict[str, float]:
    """The timed part, in its own process (see module docstring)."""
    from overstap.region.model import load_region
    from overstap.services.dossier_pipeline import (
        PipelineConfig,
        RegionDossiers,
        process_dossiers,
    )

    region = load_region(region_dir)
    config = PipelineConfig(pki_dir, PASSPHRASE, region.calendar.registration_deadline)
    ok = held = size = 0
    started = time.perf_counter()
    stream = process_dossiers(
        _lines(region_dir / "students.jsonl"),  # type: ignore[arg-type]
        config,
        prepare=RegionDossiers(region_dir),
        workers=workers,
        chunk_size=64,
    )
    for outcome in stream:
        if outcome.payload is not None:
            ok += 1
            size += len(outcome.payload)
        else:
            held += 1
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool has exited: all counted
    cpu_main, cpu_workers = own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime
    raw = raw_signing_rate(workers)
    return {
        "ok": ok,
        "held": held,
        "seconds": seconds,
        "bytes": size,
        "raw": raw,
        "cpu_main": cpu_main,
        "cpu_workers": cpu_workers,
        "rss_main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=TARGET_N)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--run", nargs=2, metavar=("REGION", "PKI"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        figures = run(Path(args.run[0]), Path(args.run[1]), args.workers)
        print(json.dumps(figures))
        return

    region_dir, pki_dir = _setup(args.students, args.seed)
    child = subprocess.run(  # noqa: S603 (this very script, with our own arguments)
        [sys.executable, __file__, "--workers", str(args.workers), "--run", str(region_dir), str(pki_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    f = json.loads(child.stdout.strip().splitlines()[-1])
    n = f["ok"] + f["held"]
    rate = n / f["seconds"]
    target_rate = TARGET_N / TARGET_SECONDS
    print(f"students          {args.students:,} (seed {args.seed}), workers {args.workers}")
    print(
        f"dossiers          {n:,} ({f['ok']:,} signed and encrypted, {f['held']:,} held back by rules)"
    )
    print(f"wall seconds      {f['seconds']:.1f}")
    print(f"dossiers/s        {rate:,.0f}")
    print(f"payload           {f['bytes'] / max(f['ok'], 1) / 1024:.1f} KB per dossier")
    print(
        f"peak RSS          {f['rss_main']:.0f} MB (main), {f['rss_worker']:.0f} MB (largest worker)"
    )
    per = 1e6 / max(n, 1)
    print(
        f"CPU per dossier   {f['cpu_workers'] * per:.0f} us in workers, "
        f"{f['cpu_main'] * per:.0f} us in the main process"
    )
    print(f"raw RSA-2048 sign {f['raw']:,.0f}/s with {args.workers} processes (10 KB inputs)")
    print(f"ratio to raw      {rate / f['raw']:.2f} (target >= {TARGET_RAW_FRACTION:.2f})")
    print(
        f"ratio to target   {target_rate / rate:.2f} (target {target_rate:,.0f}/s; below 1.0 meets it)"
    )


if __name__ == "__main__":
    main()
