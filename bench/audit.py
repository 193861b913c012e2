"""Benchmark: append N audit records and verify the chain (auditors' target: verify at least
200,000 records/s; SHA-256 in Python does several hundred thousand small hashes per second).

Run: `.venv/bin/python bench/audit.py [--records N] [--batch B] [--database URL]`
Default: a fresh SQLite file in a temp dir. With --database (e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/overstap_bench_audit) the database must exist and be
empty; drop it afterwards. Timed: building the events and `AuditLog.append_many` in transactions
of B events (as the services do), then `AuditLog.verify()` over the whole chain.
Prints records/s for both, peak RSS (flat in N: records are streamed) and the ratio to the target.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from overstap.audit.chain import AuditEvent
from overstap.store import migrate
from overstap.store.audit_log import AuditLog
from overstap.store.engine import make_engine

TARGET_VERIFY_PER_S = 200_000

# The shapes the services append (sis_pull, region_load, dossier_build, outbox), most common first.
_ACTORS = ("overstap sis pull", "overstap region load", "overstap dossier build", "overstap outbox")
_SCHOOLS = tuple(f"{n:02d}AB{n % 10}" for n in range(10, 40))
_FIELDS = (["naam"], ["adres", "postcode"], ["leerjaar"], ["niveau", "leerjaar"], ["telefoon"])


def _pseudonym(i: int) -> str:
    return "ps1_" + hashlib.blake2b(i.to_bytes(8, "big"), digest_size=16).hexdigest()


def _events(start: int, count: int) -> Iterator[AuditEvent]:
    """`count` realistic events, deterministic in their index; no nine-digit numbers."""
    for i in range(start, start + count):
        school = _SCHOOLS[i % len(_SCHOOLS)]
        kind = i % 10
        if kind < 5:
            yield AuditEvent(
                _ACTORS[0],
                "student.updated",
                "student",
                _pseudonym(i),
                origin=f"sis:{school}",
                detail={"school": school, "fields": _FIELDS[i % len(_FIELDS)]},
            )
        elif kind < 7:
            yield AuditEvent(
                _ACTORS[1],
                "student.created",
                "student",
                _pseudonym(i),
                origin=f"region:{school}",
            )
        elif kind < 9:
            yield AuditEvent(
                _ACTORS[2],
                "dossier.built",
                "dossier",
                f"DOS-2026-{i:020x}",
                detail={"version": 1 + i % 3, "receiving": f"{i % 90 + 10:02d}MB"},
            )
        else:
            yield AuditEvent(
                _ACTORS[3],
                "message.sent",
                "message",
                f"msg-{i:012d}",
                result="ok" if i % 50 else "failed",
                detail={"attempt": 1 + i % 4, "status": 200 if i % 50 else 503},
            )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(url: str, records: int, batch: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    setup_rss = _rss_mb()

    started = time.perf_counter()
    for start in range(0, records, batch):
        with engine.begin() as conn:
            AuditLog(conn).append_many(_events(start, min(batch, records - start)))
    append_s = time.perf_counter() - started
    append_rss = _rss_mb()

    started = time.perf_counter()
    with engine.connect().execution_options(read_only=True) as conn:
        report = AuditLog(conn).verify()
    verify_s = time.perf_counter() - started
    engine.dispose()
    if not report.ok or report.count != records:
        raise SystemExit(f"verify failed: {report}")

    verify_rate = records / verify_s
    print(f"backend           {engine.dialect.name}")
    print(f"records           {records:,} (batches of {batch:,})")
    print(f"append            {append_s:.1f} s = {records / append_s:,.0f} records/s")
    print(f"verify            {verify_s:.1f} s = {verify_rate:,.0f} records/s")
    print(
        f"peak RSS          {setup_rss:.0f} MB after setup, {append_rss:.0f} MB after append, "
        f"{_rss_mb():.0f} MB after verify"
    )
    print(
        f"ratio to target   {TARGET_VERIFY_PER_S / verify_rate:.2f} "
        f"(verify target {TARGET_VERIFY_PER_S:,} records/s; below 1.0 meets it)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database (default: SQLite)")
    args = parser.parse_args()
    if args.database:
        run(args.database, args.records, args.batch)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.records, args.batch)


if __name__ == "__main__":
    main()
