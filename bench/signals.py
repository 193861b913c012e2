"""Benchmark: evaluate the signal rules for N students (issue 7 target: 1,000,000 in at most 20 s
on 2 cores, memory flat in N).

Run: `.venv/bin/python bench/signals.py [--students N] [--database URL]`
Setup (not timed, cached in $TMPDIR/overstap-bench for SQLite): a hub holding N students of one
leaving cohort in 40 municipalities, and their registration statuses as the reconciliation
ledger holds them (about 2.8 per student): 85% enrol, and the rest are the stories the rules
look for (no registration, zomerlek, dropout, refused with and without an alternative), with 5%
of the students moved during the year.
Timed, per day (the deadline, the zomerlek date with every rule at once, a day in the first mbo
year): `run_signals` (raise and withdraw in one transaction with their audit records) and
`queue_signal_files` (one file per municipality: XML validated and signed by the hub, a CSV,
both CMS-encrypted to the municipality, queued in the outbox). The dev PKI (hub and 40
municipalities) is made once and cached with the database.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 20.0
YEAR = 2026
MUNICIPALITIES = 40
SCHOOLS = 200
INSTITUTIONS = ("25AA", "25BB", "25CC", "25DD", "25EE", "25FF")


PASSPHRASE = b"bench-signals-passphrase"


def _pki(root: Path) -> None:
    from overstap.domain.identifiers import Oin
    from overstap.pki import PartySpec, init_dev_pki
    from overstap.services.pki import DEV_HUB_OIN

    parties = [PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub")]
    parties += [
        PartySpec(slug=f"gm-GM{1000 + i:04d}", name=f"Gemeente {i}", oin=Oin(f"0000000100{i:010d}"),
                  kind="gemeente")
        for i in range(MUNICIPALITIES)
    ]  # fmt: skip
    init_dev_pki(root, parties, PASSPHRASE)


def _bsns() -> Iterator[str]:
    """Valid BSNs in order: eight digits and the check digit that passes the elfproef."""
    for head in range(10_000_000, 100_000_000):
        digits = f"{head:08d}"
        check = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check <= 9:
            yield digits + str(check)


def _setup(url: str, students: int, seed: int) -> None:
    from overstap.bootstrap import HubContext
    from overstap.domain.calendar import SchoolCalendar, SchoolYear
    from overstap.store import migrate
    from overstap.store.bulk import bulk_insert
    from overstap.store.signals import save_calendar
    from overstap.store.tables import (
        doorstroompunt_region,
        mbo_institution,
        municipality,
        residence,
        status_message,
        student,
        vo_school,
    )

    ctx = HubContext.open({**os.environ, "OVERSTAP_DATABASE_URL": url}, require_schema=False)
    migrate.upgrade(ctx.engine)
    calendar = SchoolCalendar(SchoolYear(YEAR))
    r = random.Random(seed)
    gemeenten = [f"GM{1000 + i:04d}" for i in range(MUNICIPALITIES)]
    schools = [
        f"{10 + i // 10:02d}{'AB'[i % 2]}{'CD'[i // 2 % 2]}{i % 10:02d}" for i in range(SCHOOLS)
    ]
    moment = datetime(YEAR, 10, 1, tzinfo=UTC)
    with ctx.engine.begin() as conn:
        save_calendar(conn, calendar)
        conn.execute(
            doorstroompunt_region.insert(),
            [{"code": f"MC{i:02d}", "name": f"Regio {i}", "contact_gemeente": gemeenten[i]}
             for i in range(4)],
        )  # fmt: skip
        conn.execute(
            municipality.insert(),
            [{"code": g, "name": f"Gemeente {g}", "region": f"MC{i % 4:02d}",
              "oin": f"0000000100{i:010d}"} for i, g in enumerate(gemeenten)],
        )  # fmt: skip
        conn.execute(
            vo_school.insert(),
            [{"location": s, "brin": s[:4], "name": f"School {s}", "oin": f"0000000700{i:010d}",
              "gemeente": gemeenten[i % MUNICIPALITIES], "sis": "magister"}
             for i, s in enumerate(schools)],
        )  # fmt: skip
        conn.execute(
            mbo_institution.insert(),
            [{"brin": b, "name": f"Mbo {b}", "oin": f"0000000799{i:010d}", "transport": "sftp"}
             for i, b in enumerate(INSTITUTIONS)],
        )  # fmt: skip
    deadline, zomerlek = calendar.registration_deadline, calendar.zomerlek_date

    def day(lo: date, hi: date) -> date:
        return date.fromordinal(r.randint(lo.toordinal(), hi.toordinal()))

    batch = 50_000
    numbers = _bsns()
    for start in range(0, students, batch):
        rows: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        homes: list[dict[str, Any]] = []
        for n in range(start, min(start + batch, students)):
            sid = n + 1
            gemeente = gemeenten[n % MUNICIPALITIES]
            rows.append(
                {"id": sid, "school": schools[n % SCHOOLS], "leerlingid": str(n),
                 "subject_key": f"ps1_{n:032x}", "bsn": next(numbers), "onderwijsnummer": None,
                 "voornamen": "Sam", "roepnaam": "Sam", "voorvoegsel": "", "achternaam": "Bench",
                 "geboortedatum": date(YEAR - 16, 1 + n % 12, 1 + n % 28), "gemeente": gemeente,
                 "adres_geheim": False, "straat": "Straat", "huisnummer": "1",
                 "postcode": "1234AB", "plaats": "Plaats", "phone": "", "email": "",
                 "guardians": [], "level": "vmbo_kb", "leerjaar": 4, "leaving_year": True,
                 "school_year": str(calendar.year), "updated_at": moment, "fingerprint": None,
                 "cohort_left_on": None, "startkwalificatie_on": None}
            )  # fmt: skip
            x = r.random()
            mbo = INSTITUTIONS[n % len(INSTITUTIONS)]
            story: list[tuple[str, str, date]] = []
            if x < 0.85:
                got = day(date(YEAR, 11, 1), deadline - timedelta(1))
                story = [(mbo, "ontvangen", got),
                         (mbo, "overeenkomst_aangeboden", got + timedelta(20)),
                         (mbo, "ingeschreven", day(date(YEAR + 1, 6, 1), zomerlek - timedelta(1)))]  # fmt: skip
            elif x < 0.88:
                story = []  # geen aanmelding
            elif x < 0.91:
                story = [(mbo, "ontvangen", day(date(YEAR, 11, 1), deadline - timedelta(1)))]
            elif x < 0.935:
                story = [(mbo, "ontvangen", day(date(YEAR, 11, 1), deadline - timedelta(1))),
                         (mbo, "ingeschreven", day(date(YEAR + 1, 6, 1), zomerlek - timedelta(1))),
                         (mbo, "uitgeschreven", day(zomerlek + timedelta(1), date(YEAR + 2, 6, 30)))]  # fmt: skip
            elif x < 0.95:
                story = [(mbo, "ontvangen", day(date(YEAR, 11, 1), deadline - timedelta(1))),
                         (mbo, "niet_tot_inschrijving", day(deadline, date(YEAR + 1, 7, 1)))]  # fmt: skip
            else:
                other = INSTITUTIONS[(n + 1) % len(INSTITUTIONS)]
                refused = day(deadline, date(YEAR + 1, 7, 1))
                story = [(mbo, "ontvangen", day(date(YEAR, 11, 1), deadline - timedelta(1))),
                         (mbo, "niet_tot_inschrijving", refused),
                         (other, "ontvangen", refused + timedelta(5)),
                         (other, "ingeschreven", refused + timedelta(40))]  # fmt: skip
            for i, (brin, status, when) in enumerate(story):
                messages.append(
                    {"message_id": f"B-{n}-{i}", "received_at": moment, "channel": "sftp",
                     "mbo_brin": brin, "subject_key": f"ps1_{n:032x}", "student_id": sid,
                     "dossier_id": None, "status": status, "status_date": when,
                     "sent_at": datetime.combine(when, day_time(12, 0, i), tzinfo=UTC),
                     "outcome": "applied", "work_item": None}
                )  # fmt: skip
            if r.random() < 0.05:
                homes.append({"student_id": sid, "since": None, "gemeente": gemeente,
                              "straat": None, "huisnummer": None, "postcode": None, "plaats": None})  # fmt: skip
                homes.append({"student_id": sid, "since": day(date(YEAR, 10, 15), zomerlek),
                              "gemeente": gemeenten[(n + 7) % MUNICIPALITIES], "straat": None,
                              "huisnummer": None, "postcode": None, "plaats": None})  # fmt: skip
        with ctx.engine.begin() as conn:
            bulk_insert(conn, student, rows)
            bulk_insert(conn, status_message, messages)
            bulk_insert(conn, residence, homes)
        print(f"setup: {min(start + batch, students):,} students", flush=True)
    ctx.close()


def _routes(ctx: object, drops: Path) -> None:
    from overstap.ports import Route
    from overstap.services.delivery import save_municipality_routes

    save_municipality_routes(
        ctx,  # type: ignore[arg-type]
        [Route(f"GM{1000 + i:04d}", "folder", {"folder": str(drops / "{recipient}"),
                                             "oin": f"0000000100{i:010d}"})
         for i in range(MUNICIPALITIES)],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database (default: SQLite)")
    args = parser.parse_args()

    from overstap.bootstrap import HubContext
    from overstap.domain.calendar import SchoolCalendar, SchoolYear
    from overstap.services.signal_files import queue_with_hub_pki
    from overstap.services.signals import run_signals
    from overstap.store import migrate

    calendar = SchoolCalendar(SchoolYear(YEAR))
    cache = Path(tempfile.gettempdir()) / "overstap-bench" / f"signals-{args.students}-{args.seed}"
    if not (cache / "pki-ready").exists():
        shutil.rmtree(cache / "pki", ignore_errors=True)
        _pki(cache / "pki")
        (cache / "pki-ready").write_text("ok")
    with tempfile.TemporaryDirectory() as tmp:
        if args.database:
            url = args.database
            _setup(url, args.students, args.seed)
        else:
            if not (cache / "ready").exists():
                (cache / "hub.db").unlink(missing_ok=True)
                _setup(f"sqlite:///{cache / 'hub.db'}", args.students, args.seed)
                (cache / "ready").write_text("ok")
            shutil.copy(cache / "hub.db", Path(tmp) / "hub.db")
            url = f"sqlite:///{Path(tmp) / 'hub.db'}"
        env = {**os.environ, "OVERSTAP_HOME": tmp, "OVERSTAP_DATABASE_URL": url,
               "OVERSTAP_PKI_DIR": str(cache / "pki")}  # fmt: skip
        ctx = HubContext.open(env, require_schema=False)
        migrate.upgrade(ctx.engine)  # a cached database from an older schema catches up
        _routes(ctx, Path(tmp) / "drops")
        days = [
            ("deadline", calendar.registration_deadline),
            ("zomerlek date", calendar.zomerlek_date),
            ("mbo year, 1 March", date(YEAR + 2, 3, 1)),
        ]
        timings = []
        for label, on in days:
            started = time.perf_counter()
            plan = run_signals(ctx, on)
            evaluated = time.perf_counter() - started
            files = queue_with_hub_pki(ctx, on, PASSPHRASE)
            seconds = time.perf_counter() - started
            timings.append(seconds)
            kinds: dict[str, int] = {}
            for s in plan.raises:
                kinds[s.kind.value] = kinds.get(s.kind.value, 0) + 1
            print(
                f"{label:18s} {seconds:5.1f} s (rules {evaluated:.1f} s, files "
                f"{seconds - evaluated:.1f} s)  raised {len(plan.raises):,} {kinds}, "
                f"withdrawn {len(plan.withdrawals):,}, files {len(files.files)}"
            )
        ctx.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worst = max(timings)
    print(f"students          {args.students:,}")
    print(f"peak RSS          {rss:.0f} MB")
    print(
        f"ratio to target   {worst / (TARGET_SECONDS * args.students / 1_000_000):.2f} "
        f"(slowest day, rules and files; target {TARGET_SECONDS:.0f} s for 1,000,000)"
    )


if __name__ == "__main__":
    main()
