"""Benchmark: generate a synthetic region (issue 2 target: 150,000 students in under 60 s).

Run: `.venv/bin/python bench/region_generate.py [--students N] [--seed S]`
Prints wall seconds, students/s, peak RSS of this process and its workers, and the ratio to the
60 s target (below 1.0 meets it).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from overstap.region.generate import generate_region

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=150_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = generate_region(Path(tmp) / "region", students=args.students, seed=args.seed)
        seconds = time.perf_counter() - started
        size = sum(f.stat().st_size for f in (Path(tmp) / "region").rglob("*") if f.is_file())
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    scaled_target = TARGET_SECONDS * args.students / 150_000
    print(f"students          {summary.students:,}")
    print(f"wall seconds      {seconds:.1f}")
    print(f"students/s        {summary.students / seconds:,.0f}")
    print(f"output            {size / 1e6:.0f} MB")
    print(f"peak RSS          {own:.0f} MB (main), {workers:.0f} MB (largest worker)")
    print(f"ratio to target   {seconds / scaled_target:.2f} (target {scaled_target:.0f} s)")


if __name__ == "__main__":
    main()
