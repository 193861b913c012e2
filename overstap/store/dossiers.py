"""Transfer dossiers in the hub's store: content as JSON beside the student row it belongs to.

A dossier row holds routing (receiving BRIN, programme), the state, and `content`: parts A and
B, inzage, school career, result and attachments. The student itself is the `student` row, so
a correction pulled from the SIS (a new address) reaches the next build of the dossier.
Saving the same dossier twice changes nothing; a changed content raises `version` (the mbo
receives a corrected dossier as the same dossierid with a higher versie).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Select, insert, select, update

from overstap.domain.calendar import SchoolYear
from overstap.domain.dossier import (
    Approver,
    Attachment,
    Attendance,
    Dossier,
    ExamResult,
    Inzage,
    JaNee,
    MentorPart,
    Programme,
    Promotion,
    SchoolCareerEntry,
    StudentPart,
    Uitslag,
    WarmeOverdracht,
)
from overstap.domain.identifiers import Brin, BrinVestiging, Crebo
from overstap.domain.states import DossierState
from overstap.domain.student import Contact, Level
from overstap.store.engine import as_utc
from overstap.store.students import student_from_row
from overstap.store.tables import dossier as dossier_table
from overstap.store.tables import student as student_table


def content_of(d: Dossier) -> dict[str, Any]:
    """The JSON document stored in `dossier.content` (plain types, dates as ISO text)."""
    a, b, inzage, result = d.student_part, d.mentor_part, d.inzage, d.result
    return {
        "student_part": None
        if a is None
        else {
            "motivation": a.motivation,
            "study_choice": a.study_choice,
            "experience": a.experience,
            "support_requested": a.support_requested,
        },
        "mentor_part": None
        if b is None
        else {
            "advice": b.advice,
            "support_needs": b.support_needs,
            "absent_hours": b.attendance.absent_hours,
            "unauthorised_absent_hours": b.attendance.unauthorised_absent_hours,
            "attendance_remarks": b.attendance.remarks,
            "warm_needed": b.warme_overdracht.needed,
            "warm_contact_name": b.warme_overdracht.contact_name,
            "warm_phone": b.warme_overdracht.contact.phone,
            "warm_email": b.warme_overdracht.contact.email,
        },
        "inzage": None
        if inzage is None
        else {
            "seen": inzage.seen,
            "date": inzage.date.isoformat(),
            "by": inzage.by.value,
            "by_name": inzage.by_name,
            "akkoord": inzage.akkoord.value,
            "toestemming": inzage.toestemming.value,
        },
        "school_career": [
            {
                "school_year": str(e.school_year),
                "school": str(e.school),
                "level": e.level.value,
                "leerjaar": e.leerjaar,
            }
            for e in d.school_career
        ],
        "result": None
        if result is None
        else (
            {"exam": result.uitslag.value, "date": result.datum.isoformat()}
            if isinstance(result, ExamResult)
            else {"bevorderd": result.bevorderd, "date": result.datum.isoformat()}
        ),
        "attachments": [
            {
                "file_name": x.file_name,
                "media_type": x.media_type,
                "content": base64.b64encode(x.content).decode("ascii"),
            }
            for x in d.attachments
        ],
    }


def _result(raw: dict[str, Any] | None) -> ExamResult | Promotion | None:
    if raw is None:
        return None
    day = date.fromisoformat(raw["date"])
    if "exam" in raw:
        return ExamResult(Uitslag(raw["exam"]), day)
    return Promotion(bool(raw["bevorderd"]), day)


def dossier_from_rows(row: Any, student_row: Any) -> Dossier:
    """The domain dossier from its row and its student's row."""
    content: dict[str, Any] = row["content"]
    a, b, inzage = content["student_part"], content["mentor_part"], content["inzage"]
    return Dossier(
        dossier_id=row["dossier_id"],
        version=row["version"],
        created=as_utc(row["created_at"]),
        student=student_from_row(student_row),
        receiving=Brin(row["receiving"]),
        programme=Programme(Crebo(row["crebo"]), row["mbo_level"]),
        state=DossierState(row["state"]),
        student_part=None if a is None else StudentPart(**a),
        mentor_part=None
        if b is None
        else MentorPart(
            advice=b["advice"],
            support_needs=b["support_needs"],
            attendance=Attendance(
                b["absent_hours"], b["unauthorised_absent_hours"], b["attendance_remarks"]
            ),
            warme_overdracht=WarmeOverdracht(
                needed=b["warm_needed"],
                contact_name=b["warm_contact_name"],
                contact=Contact(phone=b["warm_phone"], email=b["warm_email"]),
            ),
        ),
        inzage=None
        if inzage is None
        else Inzage(
            seen=inzage["seen"],
            date=date.fromisoformat(inzage["date"]),
            by=Approver(inzage["by"]),
            by_name=inzage["by_name"],
            akkoord=JaNee(inzage["akkoord"]),
            toestemming=JaNee(inzage["toestemming"]),
        ),
        school_career=tuple(
            SchoolCareerEntry(
                SchoolYear.parse(e["school_year"]),
                BrinVestiging.parse(e["school"]),
                Level(e["level"]),
                e["leerjaar"],
            )
            for e in content["school_career"]
        ),
        result=_result(content["result"]),
        attachments=tuple(
            Attachment(x["file_name"], x["media_type"], base64.b64decode(x["content"]))
            for x in content["attachments"]
        ),
    )


@dataclass
class DossierSaveResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    # Dossiers whose student is not in the store: reported, never silently dropped.
    unknown_student: list[str] = field(default_factory=list)


def save_dossiers(
    conn: Connection, dossiers: Sequence[Dossier], now: datetime
) -> DossierSaveResult:
    """Upsert by dossier_id; the state of an existing dossier is left to the flows that own it."""
    result = DossierSaveResult()
    if not dossiers:
        return result
    by_school: dict[str, set[str]] = {}
    for d in dossiers:
        by_school.setdefault(str(d.student.school), set()).add(d.student.leerlingid)
    # Per school: SQLite scans the table for a row-value IN list (store/students.py).
    student_ids = {
        (r.school, r.leerlingid): r.id
        for school, ids in by_school.items()
        for r in conn.execute(
            select(student_table.c.id, student_table.c.school, student_table.c.leerlingid).where(
                student_table.c.school == school, student_table.c.leerlingid.in_(sorted(ids))
            )
        )
    }
    existing = {
        r.dossier_id: r
        for r in conn.execute(
            select(
                dossier_table.c.dossier_id, dossier_table.c.version, dossier_table.c.content,
                dossier_table.c.receiving, dossier_table.c.crebo, dossier_table.c.mbo_level,
            ).where(dossier_table.c.dossier_id.in_([d.dossier_id for d in dossiers]))
        )
    }  # fmt: skip
    new_rows: list[dict[str, Any]] = []
    for d in dossiers:
        student_id = student_ids.get((str(d.student.school), d.student.leerlingid))
        if student_id is None:
            result.unknown_student.append(d.dossier_id)
            continue
        values = {
            "receiving": str(d.receiving),
            "crebo": str(d.programme.crebo),
            "mbo_level": d.programme.level,
            "content": content_of(d),
        }
        old = existing.get(d.dossier_id)
        if old is None:
            new_rows.append(
                {
                    "dossier_id": d.dossier_id,
                    "student_id": student_id,
                    "version": d.version,
                    "state": d.state.value,
                    "created_at": d.created,
                    "updated_at": now,
                    **values,
                }
            )
            result.created.append(d.dossier_id)
        elif any(getattr(old, k) != v for k, v in values.items()):
            conn.execute(
                update(dossier_table)
                .where(dossier_table.c.dossier_id == d.dossier_id)
                .values(**values, version=old.version + 1, updated_at=now)
            )
            result.updated.append(d.dossier_id)
        else:
            result.unchanged += 1
    if new_rows:
        conn.execute(insert(dossier_table), new_rows)
    return result


def _joined() -> Select[Any]:
    return select(dossier_table, student_table).join(
        student_table, dossier_table.c.student_id == student_table.c.id
    )


def _from_joined(row: Any) -> Dossier:
    return dossier_from_rows(
        {col.name: row[col] for col in dossier_table.c},
        {col.name: row[col] for col in student_table.c},
    )


def find_dossiers(conn: Connection, leerlingid: str, school: str | None = None) -> list[Dossier]:
    """Every dossier of the student(s) with this leerlingid (optionally at one school location)."""
    query = (
        _joined()
        .where(student_table.c.leerlingid == leerlingid)
        .order_by(student_table.c.school, dossier_table.c.dossier_id)
    )
    if school is not None:
        query = query.where(student_table.c.school == school)
    return [_from_joined(row) for row in conn.execute(query).mappings()]


def iter_dossiers(
    conn: Connection, *, states: Sequence[DossierState] | None = None, batch: int = 1000
) -> Iterator[Dossier]:
    """All dossiers (optionally in some states), streamed in dossier_id order, `batch` rows at a
    time, so a national run does not hold every dossier in memory."""
    query = _joined().order_by(dossier_table.c.dossier_id)
    if states is not None:
        query = query.where(dossier_table.c.state.in_([s.value for s in states]))
    result = conn.execution_options(yield_per=batch).execute(query).mappings()
    for row in result:
        yield _from_joined(row)
