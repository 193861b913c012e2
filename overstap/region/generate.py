"""Deterministic synthetic regions: parties, a student cohort with its intended year, SIS exports.

Same (students, seed, school_year) gives byte-identical files: `random.Random(seed)` draws the
parties and all personal numbers in a fixed order, each school location then has its own
generator seeded from (seed, position); nothing reads the clock, JSON and YAML keys are sorted and
no set is ever iterated to produce output (string hashing is randomised per process). The layout
is in docs/region.md; `overstap.region.model` reads it back.

Speed matters (150,000 students is the national cohort, used for benchmarks), so students are
plain dicts written as they are made, school by school, in parallel processes for large regions;
the domain types check a sample here and every record when the region is loaded.
"""

from __future__ import annotations

import bisect
import json
import math
import multiprocessing
import os
import random
import shutil
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any, TypeVar

import yaml

from overstap.domain.calendar import SchoolCalendar, SchoolYear
from overstap.domain.dossier import Approver, Uitslag, required_approver
from overstap.domain.identifiers import Brin, BrinVestiging, Oin
from overstap.domain.signals import startkwalificatie_on
from overstap.domain.student import Level
from overstap.region import names
from overstap.region.model import (
    REGION_FILE,
    SIS_DIR,
    SIS_FILE,
    STUDENTS_FILE,
    Outcome,
    Region,
    region_from_mapping,
    student_from_mapping,
)
from overstap.region.sis import DIALECTS

T = TypeVar("T")

PROGRESS_EVERY = 1000
VALIDATE_EVERY = 500  # every n-th student goes through the domain types while generating

# Sizes per student count (docs/region.md).
STUDENTS_PER_LOCATION = 150
STUDENTS_PER_INSTITUTION = 1500
STUDENTS_PER_MUNICIPALITY = 400
MAX_INSTITUTIONS = 20
MAX_REGIONS = 99  # MC01..MC99
MAX_MUNICIPALITIES = MAX_REGIONS * 8  # Doorstroompunt regions hold 2-8 municipalities
ALL_BRINS = 100 * 26 * 26

# Shares of the cohort (docs/region.md explains the numbers).
P_ONDERWIJSNUMMER = 0.02
P_SECRET_ADDRESS = 0.01
P_MOVE = 0.05
P_MOVE_OTHER_REGION = 0.35
P_SUPPORT = 0.20
P_NOT_LEAVING = 0.08

OUTCOMES: tuple[tuple[Outcome, float], ...] = (
    (Outcome.INGESCHREVEN, 0.85),
    (Outcome.GEEN_AANMELDING, 0.03),
    (Outcome.ZOMERLEK, 0.03),
    (Outcome.NIET_TOT_INSCHRIJVING_ALTERNATIEF, 0.02),
    (Outcome.AFGEWEZEN_ZONDER_ALTERNATIEF, 0.015),
    (Outcome.UITVAL, 0.025),
    (Outcome.VERVOLG_HAVO, 0.03),
)
# Only these can "continue to havo" (or vwo, from havo) instead of going to mbo.
VERVOLG_LEVELS = frozenset({"vmbo_gl", "vmbo_tl", "havo"})

LEVELS_BY_KIND: dict[str, tuple[tuple[str, float], ...]] = {
    "breed": (
        ("vmbo_bb", 14),
        ("vmbo_kb", 18),
        ("vmbo_gl", 6),
        ("vmbo_tl", 40),
        ("havo", 18),
        ("vwo", 4),
    ),
    "vmbo": (("vmbo_bb", 22), ("vmbo_kb", 26), ("vmbo_gl", 10), ("vmbo_tl", 42)),
    "pro": (("pro", 1),),
    "vso": (("vso", 1),),
}
SCHOOL_KINDS: tuple[tuple[str, float], ...] = (
    ("breed", 0.60),
    ("vmbo", 0.28),
    ("pro", 0.07),
    ("vso", 0.05),
)
# The mbo level a student chooses, by vo level.
MBO_LEVELS: dict[str, tuple[tuple[int, float], ...]] = {
    "pro": ((1, 0.6), (2, 0.4)),
    "vso": ((1, 0.5), (2, 0.4), (3, 0.1)),
    "vmbo_bb": ((1, 0.1), (2, 0.85), (3, 0.05)),
    "vmbo_kb": ((2, 0.3), (3, 0.6), (4, 0.1)),
    "vmbo_gl": ((3, 0.35), (4, 0.65)),
    "vmbo_tl": ((3, 0.35), (4, 0.65)),
    "havo": ((4, 1.0),),
    "vwo": ((4, 1.0),),
}
# Age on 1 October relative to the usual age for the year (12 + leerjaar): most are on time.
AGE_OFFSETS: tuple[tuple[int, float], ...] = (
    (-1, 0.03),
    (0, 0.66),
    (1, 0.23),
    (2, 0.06),
    (3, 0.02),
)
EXAM: tuple[tuple[str, float], ...] = (("geslaagd", 0.88), ("herexamen", 0.05), ("afgewezen", 0.07))

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606: never deliverable
LETTER_PAIRS = tuple(
    a + b
    for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if a + b not in ("SA", "SD", "SS")
)
STREETS = tuple(root + suffix for root in names.STREET_ROOTS for suffix in names.STREET_SUFFIXES)


@dataclass(frozen=True)
class RegionSummary:
    """What was generated, for printing after `overstap region generate`."""

    directory: Path
    code: str
    school_year: str
    students: int
    leaving_year: int
    schools: int
    institutions: int
    municipalities: int
    regions: int
    onderwijsnummers: int
    secret_addresses: int
    movers: int
    support_needs: int
    outcomes: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"region {self.code} ({self.school_year}) in {self.directory}",
            f"  students              {self.students:>9,}",
            f"    in the leaving year {self.leaving_year:>9,}",
            f"    onderwijsnummer     {self.onderwijsnummers:>9,}",
            f"    secret address      {self.secret_addresses:>9,}",
            f"    moving this year    {self.movers:>9,}",
            f"    with support needs  {self.support_needs:>9,}",
            f"  vo school locations   {self.schools:>9,}",
            f"  mbo institutions      {self.institutions:>9,}",
            f"  municipalities        {self.municipalities:>9,}",
            f"  Doorstroompunt regions{self.regions:>9,}",
            "  intended outcomes",
        ]
        lines += [f"    {k:<34}{v:>9,}" for k, v in self.outcomes.items()]
        return "\n".join(lines)

    def __rich__(self) -> str:
        # rich would pretty-print the dataclass repr; the table above reads better.
        return str(self)


@dataclass
class _Municipality:
    code: str
    name: str
    region: str
    oin: str
    places: list[str]
    postcodes: range
    streets: list[str]


@dataclass
class _School:
    brin: str
    vestiging: str
    name: str
    gemeente: _Municipality
    sis: str
    kind: str
    weight: float

    @property
    def location(self) -> str:
        return self.brin + self.vestiging


@dataclass
class _Institution:
    brin: str
    name: str
    transport: str
    weight: float


@dataclass
class _Counts:
    students: int = 0
    leaving_year: int = 0
    onderwijsnummers: int = 0
    secret_addresses: int = 0
    movers: int = 0
    support_needs: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {o.value: 0 for o in Outcome})

    def add(self, other: _Counts) -> None:
        self.students += other.students
        self.leaving_year += other.leaving_year
        self.onderwijsnummers += other.onderwijsnummers
        self.secret_addresses += other.secret_addresses
        self.movers += other.movers
        self.support_needs += other.support_needs
        for key, value in other.outcomes.items():
            self.outcomes[key] += value


@dataclass(frozen=True)
class _SchoolTask:
    index: int  # position of the school in region.yaml
    first: int  # running number of its first student in students.jsonl
    identifiers: list[tuple[str, str]]
    sis_dir: Path


# One encoder for all records: json.dumps builds a new one per call.
_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


def _cumulative(table: Sequence[tuple[T, float]]) -> tuple[list[T], list[float]]:
    return [item for item, _ in table], list(accumulate(w for _, w in table))


class _Fast:
    """Draws built on `random()` alone, for the per-student hot path.

    `random.Random.choice` and `randint` go through `_randbelow` and cost about a microsecond
    each; with ~80 draws per student that was a third of the run. `int(random() * n)` is
    biased by less than n / 2**53: invisible for the n of a word list or a date range.
    """

    __slots__ = ("random",)

    def __init__(self, rng: random.Random) -> None:
        self.random = rng.random

    def choice(self, seq: Sequence[T]) -> T:
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def randrange(self, n: int) -> int:
        return int(self.random() * n)

    def sample(self, seq: Sequence[T], k: int) -> list[T]:
        """k distinct items; k is tiny next to len(seq) here, so rejection is cheap."""
        chosen: list[int] = []
        while len(chosen) < k:
            i = int(self.random() * len(seq))
            if i not in chosen:
                chosen.append(i)
        return [seq[i] for i in chosen]


class _Picker:
    """Weighted choice by bisection on cumulative weights: cheaper than random.choices per call."""

    def __init__(self, rng: random.Random) -> None:
        self._random = rng.random

    def __call__(self, table: tuple[list[T], list[float]]) -> T:
        items, cum = table
        return items[bisect.bisect_right(cum, self._random() * cum[-1])]


def _weights_table(weights: tuple[int, int, int, int]) -> list[int]:
    return [sum(int(d) * w for d, w in zip(f"{n:04d}", weights, strict=True)) for n in range(10**4)]


# Elfproef weights 9..2 of the first eight digits, looked up four digits at a time: computing
# the sum digit by digit was the single most expensive step of generating a student.
_HIGH_WEIGHTS = _weights_table((9, 8, 7, 6))
_LOW_WEIGHTS = _weights_table((5, 4, 3, 2))


def _weighted_sum_8(head: int) -> int:
    """Sum of the first eight digits of a nine-digit number times 9, 8, ..., 2."""
    return _HIGH_WEIGHTS[head // 10**4] + _LOW_WEIGHTS[head % 10**4]


_FOLDED: dict[str, str] = {}


def _fold(text: str) -> str:
    """ASCII for e-mail addresses: Chloë van 't Hof -> chloe, vanthof (memoised: few distinct)."""
    folded = _FOLDED.get(text)
    if folded is None:
        plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        folded = "".join(c for c in plain.lower() if c.isalnum())
        _FOLDED[text] = folded
    return folded


class _Generator:
    def __init__(self, students: int, seed: int, school_year: SchoolYear) -> None:
        self.n = students
        self.seed = seed
        self.year = school_year
        self.calendar = SchoolCalendar(school_year)
        self.rng = random.Random(seed)  # noqa: S311 (synthetic data, reproducible by design)
        self.fast = _Fast(self.rng)
        self.pick = _Picker(self.rng)
        self.bsns: set[int] = set()
        self.onderwijsnummers: set[int] = set()
        self.place_names: dict[str, None] = {}
        self.counts = _Counts()
        y, y1 = school_year.start_year, school_year.start_year + 1
        deadline, zomerlek = self.calendar.registration_deadline, self.calendar.zomerlek_date
        # Windows of the year in which the scenario's events fall (docs/region.md).
        self.registration_opens = date(y, 11, 1)
        self.approval_window = (date(y, 12, 1), min(date(y1, 3, 25), deadline - timedelta(1)))
        self.offer_until = min(date(y1, 7, 10), zomerlek - timedelta(40))
        self.enrol_window = (date(y1, 6, 1), min(date(y1, 9, 15), zomerlek - timedelta(1)))
        self.dropout_window = (zomerlek + timedelta(1), date(y1 + 1, 6, 30))
        self.move_window = (date(y, 10, 15), zomerlek - timedelta(1))
        self.left_cohort_window = (date(y1, 1, 15), deadline - timedelta(7))
        self.outcome_table = _cumulative(OUTCOMES)
        self.age_table = _cumulative(AGE_OFFSETS)
        self.exam_table = _cumulative(EXAM)
        self.kind_table = _cumulative(SCHOOL_KINDS)
        self.level_tables = {k: _cumulative(v) for k, v in LEVELS_BY_KIND.items()}
        self.mbo_tables = {k: _cumulative(v) for k, v in MBO_LEVELS.items()}
        self._make_parties()
        self.region: Region = region_from_mapping(self.region_data(), "region.yaml (generated)")

    # --- parties --------------------------------------------------------------------------

    def _place_name(self) -> str:
        r = self.rng
        while True:
            name = r.choice(names.PLACE_ROOTS) + r.choice(names.PLACE_SUFFIXES)
            if r.random() < 0.12:
                name = r.choice(names.PLACE_PREFIXES) + name
            if name not in self.place_names:
                self.place_names[name] = None
                return name

    def _make_parties(self) -> None:
        r = self.rng
        n = self.n
        n_locations = max(2, round(n / STUDENTS_PER_LOCATION))
        n_institutions = min(MAX_INSTITUTIONS, max(2, round(n / STUDENTS_PER_INSTITUTION)))
        n_municipalities = min(MAX_MUNICIPALITIES, max(4, round(n / STUDENTS_PER_MUNICIPALITY)))
        if n_locations + n_institutions > ALL_BRINS:
            raise ValueError(f"{n} students need more BRIN codes than exist")
        n_regions = min(
            MAX_REGIONS,
            n_municipalities // 2,
            max(2, math.ceil(n_municipalities / 8), round(n_municipalities / 5)),
        )
        # Every region starts with 2 municipalities; the rest go one by one to regions below 8.
        sizes = [2] * n_regions
        for _ in range(n_municipalities - 2 * n_regions):
            open_regions = [i for i, s in enumerate(sizes) if s < 8]
            sizes[r.choice(open_regions)] += 1
        region_codes = sorted(r.sample(range(1, MAX_REGIONS + 1), n_regions))
        gm_codes = r.sample(range(1, 2000), n_municipalities)
        block = 9000 // n_municipalities  # postcode numbers per municipality, contiguous
        self.municipalities: list[_Municipality] = []
        self.regions: list[dict[str, str]] = []
        oins: dict[str, None] = {}
        for region_index, size in enumerate(sizes):
            code = f"MC{region_codes[region_index]:02d}"
            members: list[_Municipality] = []
            for _ in range(size):
                i = len(self.municipalities)
                name = self._place_name()
                while True:  # RSIN-shaped: 00000001 + nine digits + 000, like real municipal OINs
                    oin = f"00000001{r.randrange(10**8, 10**9)}000"
                    if oin not in oins:
                        oins[oin] = None
                        break
                places = [name] + [self._place_name() for _ in range(r.choice((0, 0, 1, 2)))]
                m = _Municipality(
                    code=f"GM{gm_codes[i]:04d}",
                    name=name,
                    region=code,
                    oin=oin,
                    places=places,
                    postcodes=range(1000 + i * block, 1000 + (i + 1) * block),
                    streets=r.sample(STREETS, 25),
                )
                self.municipalities.append(m)
                members.append(m)
            # The first municipality hosts the regional function and names the region.
            self.regions.append(
                {
                    "code": code,
                    "name": f"Doorstroompunt {members[0].name}",
                    "contact": members[0].code,
                }
            )
        self.by_region: dict[str, list[_Municipality]] = {}
        for m in self.municipalities:
            self.by_region.setdefault(m.region, []).append(m)

        brin_numbers = r.sample(range(ALL_BRINS), n_locations + n_institutions)
        brins = [f"{b // 676:02d}{chr(65 + b % 676 // 26)}{chr(65 + b % 26)}" for b in brin_numbers]
        self.schools: list[_School] = []
        brin_index = 0
        while len(self.schools) < n_locations:
            brin = brins[brin_index]
            brin_index += 1
            count = min(n_locations - len(self.schools), r.choice((1, 1, 1, 1, 1, 1, 2, 2, 3, 4)))
            kind = self.pick(self.kind_table)
            base = f"{r.choice(names.VO_SCHOOL_NAMES)} {r.choice(names.VO_SCHOOL_KINDS[kind])}"
            for v in range(count):
                gemeente = r.choice(self.municipalities)
                nth = len(self.schools)
                # Both dialects always occur: the first location is magister, the second somtoday.
                sis = "magister" if nth == 0 else "somtoday" if nth == 1 else None
                sis = sis or ("magister" if r.random() < 0.55 else "somtoday")
                small = kind in ("pro", "vso")
                self.schools.append(
                    _School(
                        brin=brin,
                        vestiging=f"{v:02d}",
                        name=base if count == 1 else f"{base}, locatie {r.choice(gemeente.places)}",
                        gemeente=gemeente,
                        sis=sis,
                        kind=kind,
                        weight=r.uniform(0.6, 1.4) * (0.35 if small else 1.0),
                    )
                )
        self.institutions: list[_Institution] = []
        mbo_names: dict[str, None] = {}
        for i in range(n_institutions):
            while True:
                form = r.choice(names.MBO_NAME_FORMS)
                name = form.format(
                    place=r.choice(self.municipalities).name,
                    place2=r.choice(self.municipalities).name,
                )
                if name not in mbo_names:
                    mbo_names[name] = None
                    break
            transport = "soap" if i == 0 else "sftp" if i == 1 else r.choice(("soap", "sftp"))
            self.institutions.append(
                _Institution(brins[brin_index + i], name, transport, r.uniform(0.5, 2.0))
            )
        self.institution_table = (
            self.institutions,
            list(accumulate(i.weight for i in self.institutions)),
        )
        crebos = r.sample(range(25000, 26000), 80)
        levels = [1] * 10 + [2] * 20 + [3] * 25 + [4] * 25
        self.programmes = [(f"{c}", lvl) for c, lvl in zip(crebos, levels, strict=True)]
        self.crebos_by_level: dict[int, list[str]] = {}
        for crebo, lvl in self.programmes:
            self.crebos_by_level.setdefault(lvl, []).append(crebo)

    def region_data(self) -> dict[str, Any]:
        cal = self.calendar
        return {
            "code": f"synth-{self.seed}",
            "name": f"Synthetische regio {self.seed}",
            "seed": self.seed,
            "students": self.n,
            "school_year": str(self.year),
            "calendar": {
                "registration_deadline": cal.registration_deadline.isoformat(),
                "zomerlek_date": cal.zomerlek_date.isoformat(),
                "afgewezen_grace_days": cal.afgewezen_grace_days,
                "diploma_date": cal.diploma_date.isoformat(),
            },
            "doorstroompunt_regions": [
                {"code": g["code"], "name": g["name"], "contact_gemeente": g["contact"]}
                for g in self.regions
            ],
            "municipalities": [
                {"code": m.code, "name": m.name, "region": m.region, "oin": m.oin}
                for m in self.municipalities
            ],
            "vo_schools": [
                {
                    "brin": s.brin,
                    "vestiging": s.vestiging,
                    "name": s.name,
                    "oin": Oin.for_brin(BrinVestiging(Brin(s.brin), s.vestiging)).value,
                    "gemeente": s.gemeente.code,
                    "sis": s.sis,
                }
                for s in self.schools
            ],
            "mbo_institutions": [
                {
                    "brin": i.brin,
                    "name": i.name,
                    "oin": Oin.for_brin(Brin(i.brin)).value,
                    "transport": i.transport,
                }
                for i in self.institutions
            ],
            "programmes": [{"crebo": c, "level": lvl} for c, lvl in self.programmes],
        }

    def students_per_school(self) -> list[int]:
        """Largest-remainder split of the students over the locations by weight."""
        total = sum(s.weight for s in self.schools)
        shares = [self.n * s.weight / total for s in self.schools]
        counts = [int(x) for x in shares]
        by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - shares[i], i))
        for i in by_remainder[: self.n - sum(counts)]:
            counts[i] += 1
        return counts

    # --- students, school by school -------------------------------------------------------

    def identifiers(self, count: int) -> list[tuple[str, str]]:
        """(bsn, onderwijsnummer) for `count` students, exactly one non-empty, unique in the region.

        Drawn from the region's own generator before any school is generated, so uniqueness
        holds across schools even when the schools are generated in parallel processes.
        """
        r = self.fast
        return [
            ("", self._onderwijsnummer()) if r.random() < P_ONDERWIJSNUMMER else (self._bsn(), "")
            for _ in range(count)
        ]

    def begin_school(self, index: int) -> None:
        """Each school has its own generator, seeded from the region seed and its position.

        That makes a school's students independent of how (and in which process) the other
        schools were generated: serial and parallel runs write the same bytes.
        """
        school_rng = random.Random(f"{self.seed}/{index}")  # noqa: S311 (synthetic data)
        self.fast = _Fast(school_rng)
        self.pick = _Picker(school_rng)
        self.counts = _Counts()

    def school_students(self, task: _SchoolTask) -> tuple[str, _Counts]:
        """Generate one school's students: writes its SIS export, returns its JSON lines."""
        self.begin_school(task.index)
        school = self.schools[task.index]
        dialect = DIALECTS[school.sis]
        folder = task.sis_dir / school.location
        folder.mkdir(parents=True)
        lines: list[str] = []
        encode = _JSON.encode
        # Stamnummers are unique per school and increase with gaps, as in real SIS data.
        next_id = self.fast.randint(10000, 899999)
        with (folder / SIS_FILE).open("w", encoding=dialect.encoding, newline="") as csv_file:
            writer = dialect.open_writer(csv_file)
            writer.writerow(dialect.columns)
            row = dialect.row
            for k, (bsn, onderwijsnummer) in enumerate(task.identifiers):
                next_id += self.fast.randint(1, 3)
                rec = self.student(school, str(next_id), bsn, onderwijsnummer)
                if k == 0 or (task.first + k) % VALIDATE_EVERY == 0:
                    # The generator and the loader must agree: a drift fails here, at once.
                    student_from_mapping(rec, self.region)
                lines.append(encode(rec))
                writer.writerow(row(rec))
        lines.append("")
        return "\n".join(lines), self.counts

    # --- one student ----------------------------------------------------------------------

    def _day(self, lo: date, hi: date) -> date:
        if hi < lo:
            hi = lo
        return date.fromordinal(self.fast.randint(lo.toordinal(), hi.toordinal()))

    def _bsn(self) -> str:
        r = self.fast
        while True:
            # From 01000000: no BSN starts with 00, so an export that writes the number as an
            # integer loses at most one leading zero (the defect Bsn.parse knows how to repair).
            head = 10**6 + r.randrange(10**8 - 10**6)
            # The weighted sum of all nine must be 0 mod 11 and the last weight is -1,
            # so the check digit is the sum of the first eight mod 11; 10 cannot be written.
            check = _weighted_sum_8(head) % 11
            number = head * 10 + check
            if check < 10 and number and number not in self.bsns:
                self.bsns.add(number)
                return f"{number:09d}"

    def _onderwijsnummer(self) -> str:
        r = self.fast
        while True:
            head = 10_000_000 + r.randrange(10**6)  # starts with 10
            # Weighted sum must be 5 mod 11: s8 - d9 = 5, so d9 = s8 - 5 (mod 11).
            check = (_weighted_sum_8(head) - 5) % 11
            number = head * 10 + check
            if check < 10 and number not in self.onderwijsnummers:
                self.onderwijsnummers.add(number)
                return str(number)

    def _address(self, m: _Municipality) -> dict[str, str]:
        r = self.fast
        huisnummer = str(r.randint(1, 250) if r.random() < 0.9 else r.randint(251, 1200))
        if r.random() < 0.08:
            huisnummer += r.choice("ABCD")
        return {
            "straat": r.choice(m.streets),
            "huisnummer": huisnummer,
            "postcode": f"{r.choice(m.postcodes)}{r.choice(LETTER_PAIRS)}",
            "plaats": r.choice(m.places),
        }

    def _phone(self) -> str:
        return f"06{self.fast.randrange(10**8):08d}"

    def _email(self, first: str, voorvoegsel: str, achternaam: str) -> str:
        r = self.fast
        return (
            f"{_fold(first)}.{_fold(voorvoegsel + achternaam)}{r.randint(1, 99)}"
            f"@{r.choice(EMAIL_DOMAINS)}"
        )

    def _residence(self, school: _School) -> _Municipality:
        r = self.fast
        x = r.random()
        if x < 0.6:
            return school.gemeente
        if x < 0.9:
            return r.choice(self.by_region[school.gemeente.region])
        return r.choice(self.municipalities)

    def _guardian(self, surname: tuple[str, str], *, legal: bool) -> dict[str, str]:
        r = self.fast
        # The first guardian is a legal representative (ouder or voogd): a foster parent alone
        # may not give consent for a minor (profile rule VOMBO-VERZORGERS).
        relations = names.LEGAL_GUARDIAN_RELATIONS if legal else names.GUARDIAN_RELATIONS
        first = r.choice(names.ADULT_FIRST_NAMES)
        voorvoegsel, achternaam = surname
        return {
            # One name in the SIS for a guardian: voornamen and roepnaam are the same.
            "voornamen": first,
            "roepnaam": first,
            "voorvoegsel": voorvoegsel,
            "achternaam": achternaam,
            "relation": r.choice(relations),
            "phone": self._phone(),
            "email": self._email(first, voorvoegsel, achternaam),
        }

    def student(
        self, school: _School, leerlingid: str, bsn: str, onderwijsnummer: str
    ) -> dict[str, Any]:
        r = self.fast
        pick = self.pick
        counts = self.counts
        level = pick(self.level_tables[school.kind])
        leaving = r.random() >= P_NOT_LEAVING
        if leaving:
            leerjaar = {"havo": 5, "vwo": 6, "pro": r.choice((4, 5)), "vso": r.randint(4, 6)}.get(
                level, 4
            )
        else:
            # Not in the leaving year, yet on the way to mbo: havo 4 and vmbo 3 switchers.
            leerjaar = {"havo": 4, "vwo": r.choice((4, 5))}.get(level, 3)
        offset = pick(self.age_table)
        if level in ("pro", "vso") and r.random() < 0.4:
            offset += 1
        age = min(20, max(15, 12 + leerjaar + offset))
        y = self.year.start_year
        birth = self._day(date(y - age - 1, 10, 2), date(y - age, 10, 1))

        counts.onderwijsnummers += bool(onderwijsnummer)
        if r.random() < 0.5:
            first, roepnaam = r.choice(names.YOUTH_FIRST_NAMES_M)
            middle = names.MIDDLE_NAMES_M
        else:
            first, roepnaam = r.choice(names.YOUTH_FIRST_NAMES_F)
            middle = names.MIDDLE_NAMES_F
        extra = r.choice((0, 0, 0, 1, 1, 2))
        voornamen = " ".join([first, *r.sample(middle, extra)])
        surname = r.choice(names.SURNAMES)
        voorvoegsel, achternaam = surname

        home = self._residence(school)
        secret = r.random() < P_SECRET_ADDRESS
        counts.secret_addresses += secret
        adres = None if secret else self._address(home)

        adult_on_first_oct = age >= 18
        if adult_on_first_oct:
            n_guardians = r.choice((0, 0, 0, 1, 1, 2, 2, 2, 2, 2))
        else:
            n_guardians = r.choice((1, 2, 2, 2))
        guardians = []
        for g in range(n_guardians):
            same_name = r.random() < (0.8 if g == 0 else 0.4)
            guardians.append(
                self._guardian(surname if same_name else r.choice(names.SURNAMES), legal=g == 0)
            )

        scenario = self._scenario(level, leaving, birth, home, secret, bool(guardians))
        counts.students += 1
        counts.leaving_year += leaving
        return {
            "leerlingid": leerlingid,
            "school": school.location,
            "bsn": bsn,
            "onderwijsnummer": onderwijsnummer,
            "voornamen": voornamen,
            "roepnaam": roepnaam,
            "voorvoegsel": voorvoegsel,
            "achternaam": achternaam,
            "geboortedatum": birth.isoformat(),
            "gemeente": home.code,
            "adres": adres,
            "adres_geheim": secret,
            "contact": {
                "phone": self._phone(),
                "email": self._email(roepnaam, voorvoegsel, achternaam),
            },
            "guardians": guardians,
            "level": level,
            "leerjaar": leerjaar,
            "leaving_year": leaving,
            "scenario": scenario,
        }

    # --- the intended year ----------------------------------------------------------------

    def _scenario(
        self,
        level: str,
        leaving: bool,
        birth: date,
        home: _Municipality,
        secret: bool,
        has_guardian: bool,
    ) -> dict[str, Any]:
        r = self.fast
        pick = self.pick
        counts = self.counts
        outcome = pick(self.outcome_table)
        if outcome is Outcome.VERVOLG_HAVO and not (leaving and level in VERVOLG_LEVELS):
            outcome = Outcome.INGESCHREVEN
        counts.outcomes[outcome.value] += 1
        applying = outcome not in (Outcome.GEEN_AANMELDING, Outcome.VERVOLG_HAVO)

        applies_to = alternative = crebo = mbo_level = None
        if applying:
            first_choice = pick(self.institution_table)
            applies_to = first_choice.brin
            mbo_level = pick(self.mbo_tables[level])
            crebo = r.choice(self.crebos_by_level[mbo_level])
            if outcome is Outcome.NIET_TOT_INSCHRIJVING_ALTERNATIEF:
                others = [i for i in self.institutions if i is not first_choice]
                alternative = r.choice(others).brin

        support_rate = 0.5 if level in ("pro", "vso") else P_SUPPORT
        support = r.choice(names.SUPPORT_NEEDS) if r.random() < support_rate else ""
        counts.support_needs += bool(support)
        warm = r.random() < (0.5 if support else 0.03)

        approval, valid = self._approval(birth, has_guardian) if applying else (None, False)

        if leaving and level not in ("pro", "vso"):
            exam: str | None = (
                "geslaagd" if outcome is Outcome.VERVOLG_HAVO else pick(self.exam_table)
            )
            bevorderd: bool | None = None
        else:
            # No central exam (pro, vso) or not in the exam year: OSO's `bevorderd` instead.
            exam = None
            bevorderd = True if leaving else r.random() < 0.3

        moves: list[dict[str, Any]] = []
        if r.random() < P_MOVE:
            counts.movers += 1
            n_moves = 1 if r.random() < 0.85 else 2
            lo, hi = self.move_window
            days = sorted(r.sample(range(lo.toordinal(), hi.toordinal() + 1), n_moves))
            current = home
            for day in days:
                current = self._move_target(current)
                moves.append(
                    {
                        "date": date.fromordinal(day).isoformat(),
                        "gemeente": current.code,
                        "adres": None if secret else self._address(current),
                    }
                )

        qualified = startkwalificatie_on(
            Level(level), Uitslag(exam) if exam else None, self.calendar
        )
        statuses, signals, left_cohort = self._story(
            outcome, leaving, applies_to, alternative, home.code, moves, qualified
        )
        return {
            "outcome": outcome.value,
            "applies_to": applies_to,
            "alternative": alternative,
            "crebo": crebo,
            "mbo_level": mbo_level,
            "support_needs": support,
            "warme_overdracht": warm,
            "approval": approval,
            "approval_valid": valid,
            "exam": exam,
            "bevorderd": bevorderd,
            "moves": moves,
            "status_dates": statuses,
            "expected_signals": signals,
            "left_cohort": left_cohort,
        }

    def _move_target(self, current: _Municipality) -> _Municipality:
        r = self.fast
        same = [m for m in self.by_region[current.region] if m is not current]
        if same and r.random() >= P_MOVE_OTHER_REGION:
            return r.choice(same)
        others = [m for m in self.municipalities if m.region != current.region]
        return r.choice(others)

    def _approval(self, birth: date, has_guardian: bool) -> tuple[dict[str, Any] | None, bool]:
        """~5% missing or refused, ~1% given by the wrong person (deliberate mistakes)."""
        r = self.fast
        day = self._day(*self.approval_window)
        right = required_approver(birth, day)
        wrong = Approver.STUDENT if right is Approver.GUARDIAN else Approver.GUARDIAN
        if wrong is Approver.GUARDIAN and not has_guardian:
            wrong = right  # an adult without a listed guardian cannot be approved by one
        x = r.random()
        if x < 0.025:
            return None, False  # inzage never given
        if x < 0.04:
            by: Approver | None = right
            toestemming = "Nee"
        elif x < 0.05:
            by, toestemming = None, "Onbekend"  # form returned unsigned
        elif x < 0.06:
            by, toestemming = wrong, "Ja"  # e.g. a minor approving themselves
        else:
            by, toestemming = right, "Ja"
        valid = toestemming == "Ja" and by is right
        record = {
            "by": by.value if by else None,
            "date": day.isoformat(),
            "toestemming": toestemming,
        }
        return record, valid

    def _story(
        self,
        outcome: Outcome,
        leaving: bool,
        applies_to: str | None,
        alternative: str | None,
        home: str,
        moves: list[dict[str, Any]],
        qualified: date | None,
    ) -> tuple[list[dict[str, str]], list[dict[str, str]], str | None]:
        """Registration statuses with dates, the signals they imply, and when a student leaves.

        No signal once the student has a startkwalificatie (a havo or vwo diploma, from the
        calendar's diploma date): the Doorstroompunt does not follow them (DOMAIN.md). Every
        synthetic student is under 23 all year, so the age condition never applies here.
        """
        cal = self.calendar
        deadline = cal.registration_deadline
        events: list[dict[str, str]] = []
        signals: list[dict[str, str]] = []

        def status(brin: str | None, day: date, name: str) -> date:
            events.append({"brin": brin or "", "date": day.isoformat(), "status": name})
            return day

        def signal(kind: str, day: date) -> None:
            if qualified is not None and qualified <= day:
                return
            gemeente = home
            for move in moves:  # the municipality the student lives in on the signal date
                if move["date"] <= day.isoformat():
                    gemeente = move["gemeente"]
            signals.append({"date": day.isoformat(), "gemeente": gemeente, "kind": kind})

        def enrol(brin: str | None, received: date) -> date:
            offered = status(
                brin,
                self._day(received + timedelta(10), self.offer_until),
                "overeenkomst_aangeboden",
            )
            lo, hi = self.enrol_window
            return status(brin, self._day(max(lo, offered + timedelta(1)), hi), "ingeschreven")

        if outcome is Outcome.GEEN_AANMELDING:
            # A student not in the leaving year is outside the deadline rule: no signal.
            if leaving:
                signal("geen_aanmelding", deadline)
            return events, signals, None
        if outcome is Outcome.VERVOLG_HAVO:
            return events, signals, self._day(*self.left_cohort_window).isoformat()

        # Everyone else registers before the deadline.
        received = status(
            applies_to, self._day(self.registration_opens, deadline - timedelta(1)), "ontvangen"
        )
        if outcome is Outcome.INGESCHREVEN:
            enrol(applies_to, received)
        elif outcome is Outcome.UITVAL:
            enrol(applies_to, received)
            left = status(applies_to, self._day(*self.dropout_window), "uitgeschreven")
            signal("uitval", left)
        elif outcome is Outcome.ZOMERLEK:
            if self.fast.random() < 0.7:
                status(
                    applies_to,
                    self._day(received + timedelta(10), self.offer_until),
                    "overeenkomst_aangeboden",
                )
            signal("zomerlek", cal.zomerlek_date)
        else:
            # Refused (or withdrawn) after the deadline, so the student had a registration on
            # the deadline date and the refusal's grace period ends before the zomerlek date.
            refused_on = self._day(deadline + timedelta(1), self.offer_until)
            if self.fast.random() < 0.4:
                status(
                    applies_to,
                    self._day(received + timedelta(1), refused_on - timedelta(1)),
                    "overeenkomst_aangeboden",
                )
            if outcome is Outcome.NIET_TOT_INSCHRIJVING_ALTERNATIEF:
                status(applies_to, refused_on, "niet_tot_inschrijving")
                # The new registration arrives inside the grace period: no signal.
                grace = max(2, cal.afgewezen_grace_days - 3)
                again = status(
                    alternative,
                    refused_on + timedelta(self.fast.randint(min(2, grace), grace)),
                    "ontvangen",
                )
                enrol(alternative, again)
            else:
                exit_status = "ingetrokken" if self.fast.random() < 0.3 else "niet_tot_inschrijving"
                status(applies_to, refused_on, exit_status)
                signal("afgewezen_zonder_alternatief", cal.grace_ends(refused_on))
        return events, signals, None


class _Dumper(yaml.SafeDumper):
    """Quotes every digit-only string (OINs, crebos, vestigingen).

    PyYAML leaves 00000001358409929000 unquoted because YAML 1.1 reads it as a string, but a
    YAML 1.2 reader (or a spreadsheet import) makes it an integer and drops the leading zeros.
    """


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "'" if value.isdigit() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def generate_region(
    out_dir: Path,
    *,
    students: int,
    seed: int,
    school_year: SchoolYear = SchoolYear(2026),  # noqa: B008 (a frozen value type)
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> RegionSummary:
    """Write a synthetic region to `out_dir`; same arguments, byte-identical files.

    `out_dir` must be new, empty, or an earlier region (it has a region.yaml): its region.yaml,
    students.jsonl and sis/ are replaced, anything else is left alone. Files are written next to
    their final names and renamed at the end, region.yaml last, so an interrupted run never
    leaves a region.yaml that describes half-written students.

    `progress(done)` is called about every 1,000 students. `workers` processes generate schools
    in parallel (default: the CPU count for large regions, 1 below `PARALLEL_FROM` students);
    the output does not depend on it.
    """
    if students < 1:
        raise ValueError("a region needs at least one student")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / REGION_FILE).exists():
        raise FileExistsError(f"{out_dir} is not empty and holds no region; refusing to write")
    out_dir.mkdir(parents=True, exist_ok=True)

    gen = _Generator(students, seed, school_year)
    region_data = gen.region_data()

    sis_new = out_dir / f"{SIS_DIR}.new"
    if sis_new.exists():
        shutil.rmtree(sis_new)
    sis_new.mkdir()
    tasks: list[_SchoolTask] = []
    first = 0
    for index, count in enumerate(gen.students_per_school()):
        tasks.append(_SchoolTask(index, first, gen.identifiers(count), sis_new))
        first += count

    totals = _Counts()
    students_new = out_dir / f"{STUDENTS_FILE}.new"
    with students_new.open("w", encoding="utf-8", newline="\n") as jsonl:
        reported = 0
        for text, counts in _run(gen, tasks, _workers(workers, students)):
            jsonl.write(text)
            totals.add(counts)
            if progress is not None and totals.students // PROGRESS_EVERY > reported:
                reported = totals.students // PROGRESS_EVERY
                progress(totals.students)
    if progress is not None and totals.students % PROGRESS_EVERY:
        progress(totals.students)

    region_new = out_dir / f"{REGION_FILE}.new"
    header = "# Synthetic region (overstap region generate); layout in docs/region.md\n"
    region_new.write_text(
        header
        + yaml.dump(region_data, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100),
        encoding="utf-8",
    )
    if (out_dir / SIS_DIR).exists():
        shutil.rmtree(out_dir / SIS_DIR)
    sis_new.rename(out_dir / SIS_DIR)
    os.replace(students_new, out_dir / STUDENTS_FILE)
    os.replace(region_new, out_dir / REGION_FILE)

    return RegionSummary(
        directory=out_dir,
        code=str(region_data["code"]),
        school_year=str(school_year),
        students=totals.students,
        leaving_year=totals.leaving_year,
        schools=len(gen.schools),
        institutions=len(gen.institutions),
        municipalities=len(gen.municipalities),
        regions=len(gen.regions),
        onderwijsnummers=totals.onderwijsnummers,
        secret_addresses=totals.secret_addresses,
        movers=totals.movers,
        support_needs=totals.support_needs,
        outcomes=dict(totals.outcomes),
    )


PARALLEL_FROM = 20_000  # below this, starting processes costs more than it saves


def _workers(requested: int | None, students: int) -> int:
    if requested is not None:
        return max(1, requested)
    if students < PARALLEL_FROM or multiprocessing.current_process().daemon:
        return 1  # a daemonic process (e.g. a pool worker) may not start children
    return max(1, min(os.cpu_count() or 1, 8))


def _run(gen: _Generator, tasks: list[_SchoolTask], workers: int) -> Iterator[tuple[str, _Counts]]:
    """The schools' JSON lines in region order, generated here or in `workers` processes."""
    if workers == 1:
        for task in tasks:
            yield gen.school_students(task)
        return
    # spawn, not fork: the caller may run threads (a progress bar does), and forking a
    # process with threads can copy a held lock into the child.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(gen,)) as pool:
        yield from pool.imap(_worker_school, tasks, chunksize=4)


_WORKER_GENERATOR: list[_Generator] = []


def _init_worker(gen: _Generator) -> None:
    _WORKER_GENERATOR.append(gen)


def _worker_school(task: _SchoolTask) -> tuple[str, _Counts]:
    return _WORKER_GENERATOR[0].school_students(task)
