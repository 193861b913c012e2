"""Who is where: per vo school, every leaving-year student and where their registrations stand;
per Doorstroompunt region, the same counted per municipality. Students with nothing come first:
they are the ones to follow up ("niet in beeld").

A student's standing is their furthest registration: ingeschreven before an offered place,
before a registration received, before a refusal or withdrawal; with none at all they are
"niet in beeld".
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from overstap.bootstrap import HubContext
from overstap.domain.states import RegistrationStatus
from overstap.store.tables import municipality, registration, student

NIET_IN_BEELD = "niet_in_beeld"
# Furthest first; a student's standing is the first of these any registration has.
_STANDING = (
    RegistrationStatus.INGESCHREVEN.value,
    RegistrationStatus.OVEREENKOMST_AANGEBODEN.value,
    RegistrationStatus.ONTVANGEN.value,
    RegistrationStatus.UITGESCHREVEN.value,
    RegistrationStatus.NIET_TOT_INSCHRIJVING.value,
    RegistrationStatus.INGETROKKEN.value,
)
_RANK = {status: rank for rank, status in enumerate(_STANDING)}


def furthest(statuses: Iterable[str]) -> str:
    """The standing of a student whose registrations stand at `statuses` (one per institution)."""
    ranked = sorted(statuses, key=lambda v: _RANK.get(v, len(_RANK)))
    return ranked[0] if ranked else NIET_IN_BEELD


@dataclass(frozen=True, slots=True)
class SchoolLine:
    leerlingid: str
    name: str
    gemeente: str
    standing: str  # a registration status, or niet_in_beeld
    since: date | None  # when the standing's status was reported
    registrations: str  # every institution and its status, e.g. "25MB ingeschreven; 77ZZ ontvangen"


def _standing(regs: list[tuple[str, str, datetime]]) -> tuple[str, date | None, str]:
    if not regs:
        return NIET_IN_BEELD, None, ""
    best = min(regs, key=lambda r: (_RANK.get(r[1], len(_RANK)), -r[2].timestamp()))
    listing = "; ".join(f"{mbo} {status}" for mbo, status, _ in sorted(regs))
    return best[1], best[2].date(), listing


def school_report(ctx: HubContext, location: str) -> list[SchoolLine]:
    """Leaving-year students of one school location; niet in beeld first, then by standing."""
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        students = conn.execute(
            select(
                student.c.id,
                student.c.leerlingid,
                student.c.voornamen,
                student.c.voorvoegsel,
                student.c.achternaam,
                student.c.gemeente,
            ).where(student.c.school == location, student.c.leaving_year.is_(True))
        ).all()
        regs: dict[int, list[tuple[str, str, datetime]]] = defaultdict(list)
        for r in conn.execute(
            select(
                registration.c.student_id,
                registration.c.mbo_brin,
                registration.c.status,
                registration.c.status_at,
            )
            .join(student, student.c.id == registration.c.student_id)
            .where(student.c.school == location)
        ):
            regs[r.student_id].append((r.mbo_brin, r.status, r.status_at))
    lines = []
    for s in students:
        standing, since, listing = _standing(regs.get(s.id, []))
        name = " ".join(p for p in (s.voornamen, s.voorvoegsel, s.achternaam) if p)
        lines.append(SchoolLine(s.leerlingid, name, s.gemeente, standing, since, listing))
    # Niet in beeld first, then the least settled standings (refused, withdrawn, ...), and
    # ingeschreven last; within a standing by leerlingid.
    lines.sort(
        key=lambda line: (
            line.standing != NIET_IN_BEELD,
            -_RANK.get(line.standing, len(_RANK)),
            line.leerlingid,
        )
    )
    return lines


@dataclass(frozen=True, slots=True)
class RegionLine:
    gemeente: str
    name: str
    students: int
    counts: dict[str, int]  # standing -> number of leaving-year residents


def region_report(ctx: HubContext, region_code: str) -> list[RegionLine]:
    """Leaving-year residents of a Doorstroompunt region's municipalities, counted by standing."""
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        places = {
            m.code: m.name
            for m in conn.execute(select(municipality).where(municipality.c.region == region_code))
        }
        residents = conn.execute(
            select(student.c.id, student.c.gemeente).where(
                student.c.gemeente.in_(list(places)), student.c.leaving_year.is_(True)
            )
        ).all()
        regs: dict[int, list[tuple[str, str, datetime]]] = defaultdict(list)
        for r in conn.execute(
            select(
                registration.c.student_id,
                registration.c.mbo_brin,
                registration.c.status,
                registration.c.status_at,
            )
            .join(student, student.c.id == registration.c.student_id)
            .where(student.c.gemeente.in_(list(places)))
        ):
            regs[r.student_id].append((r.mbo_brin, r.status, r.status_at))
    counts: dict[str, Counter[str]] = {code: Counter() for code in places}
    for s in residents:
        counts[s.gemeente][_standing(regs.get(s.id, []))[0]] += 1
    return [
        RegionLine(code, places[code], sum(c.values()), dict(c))
        for code, c in sorted(counts.items(), key=lambda kv: (-kv[1][NIET_IN_BEELD], kv[0]))
    ]


def school_csv(lines: list[SchoolLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["leerlingid", "naam", "gemeente", "stand", "sinds", "aanmeldingen"])
    for line in lines:
        writer.writerow(
            [line.leerlingid, line.name, line.gemeente, line.standing,
             line.since.isoformat() if line.since else "", line.registrations]
        )  # fmt: skip
    return out.getvalue()


def region_csv(lines: list[RegionLine]) -> str:
    columns = [NIET_IN_BEELD, *_STANDING]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["gemeentecode", "gemeente", "leerlingen", *columns])
    for line in lines:
        writer.writerow(
            [line.gemeente, line.name, line.students, *(line.counts.get(c, 0) for c in columns)]
        )
    return out.getvalue()
