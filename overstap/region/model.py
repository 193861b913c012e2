"""Reading a region directory (region.yaml, students.jsonl) into domain objects.

Every record goes through the domain types, so a region that loads is a region the hub accepts.
A problem raises `RegionDataError` naming the file, the line and the field
(`.../students.jsonl line 17: bsn: fails the elfproef ... [rule BSN-ELFPROEF]`); messages never
carry a BSN, an onderwijsnummer, a birth date or an address, only positions and public codes.
The layout itself is described in docs/region.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from overstap.domain.calendar import SchoolCalendar, SchoolYear
from overstap.domain.dossier import Approver, JaNee, Programme, Uitslag, required_approver
from overstap.domain.errors import InvalidRecord
from overstap.domain.identifiers import (
    Brin,
    BrinVestiging,
    Crebo,
    Gemeentecode,
    Oin,
    Postcode,
    RegionCode,
    personal_number,
)
from overstap.domain.parties import DoorstroompuntRegion, MboInstitution, Municipality, VoSchool
from overstap.domain.states import RegistrationStatus, SignalKind
from overstap.domain.student import Address, Contact, Guardian, Level, Name, Student

REGION_FILE = "region.yaml"
STUDENTS_FILE = "students.jsonl"
SIS_DIR = "sis"
SIS_FILE = "leerlingen.csv"

SIS_PRODUCTS = ("magister", "somtoday")
TRANSPORTS = ("soap", "sftp")

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Outcome(StrEnum):
    """The intended story of a student through the year (synthetic ground truth)."""

    INGESCHREVEN = "ingeschreven"  # registers before the deadline and enrols
    GEEN_AANMELDING = "geen_aanmelding"  # no registration at all
    ZOMERLEK = "zomerlek"  # registered or offered a place, never enrols
    NIET_TOT_INSCHRIJVING_ALTERNATIEF = (
        "niet_tot_inschrijving_alternatief"  # refused, enrols elsewhere
    )
    AFGEWEZEN_ZONDER_ALTERNATIEF = (
        "afgewezen_zonder_alternatief"  # refused or withdrawn, nothing else
    )
    UITVAL = "uitval"  # enrols, deregisters in mbo year 1
    VERVOLG_HAVO = "vervolg_havo"  # does not go to mbo (e.g. continues to havo): leaves the cohort


class RegionDataError(InvalidRecord):
    """A region file is wrong at a known place: `<file> line <n>: <field>: <reason> [rule R]`."""

    def __init__(self, message: str, *, field: str, rule: str, record: str | None = None) -> None:
        super().__init__(message, field=field, rule=rule, record=record)
        if record:
            # The place is the file and line, not a "record" id: say it the way editors do.
            self.args = (f"{record}: {field}: {message} [rule {rule}]",)


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    school_year: SchoolYear
    calendar: SchoolCalendar
    regions: tuple[DoorstroompuntRegion, ...]
    municipalities: tuple[Municipality, ...]
    vo_schools: tuple[VoSchool, ...]
    mbo_institutions: tuple[MboInstitution, ...]
    seed: int | None = None
    _by_gemeente: dict[str, Municipality] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _by_location: dict[str, VoSchool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _by_brin: dict[str, MboInstitution] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Lookups the student loader makes 150,000 times: build them once.
        self._by_gemeente.update({str(m.code): m for m in self.municipalities})
        self._by_location.update({str(s.location): s for s in self.vo_schools})
        self._by_brin.update({str(i.brin): i for i in self.mbo_institutions})

    def municipality(self, code: Gemeentecode | str) -> Municipality | None:
        return self._by_gemeente.get(str(code))

    def vo_school(self, location: BrinVestiging | str) -> VoSchool | None:
        return self._by_location.get(str(location))

    def mbo_institution(self, brin: Brin | str) -> MboInstitution | None:
        return self._by_brin.get(str(brin))


@dataclass(frozen=True, slots=True)
class Approval:
    """Inzage and toestemming for the dossier, as it will happen (`by` None: nobody answered)."""

    by: Approver | None
    date: date
    toestemming: JaNee


@dataclass(frozen=True, slots=True)
class Move:
    """From `date` on the student lives in `gemeente` at `address` (None when secret)."""

    date: date
    gemeente: Gemeentecode
    address: Address | None


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A registration status the mbo institution `brin` will report on `date`."""

    date: date
    brin: Brin
    status: RegistrationStatus


@dataclass(frozen=True, slots=True)
class ExpectedSignal:
    """A signal the hub should raise on `date` to the municipality the student then lives in."""

    kind: SignalKind
    date: date
    gemeente: Gemeentecode


@dataclass(frozen=True, slots=True)
class Scenario:
    """What will happen to the student this year: ground truth for end-to-end tests."""

    outcome: Outcome
    applies_to: Brin | None
    alternative: Brin | None  # where a refused student enrols instead
    programme: Programme | None
    support_needs: str
    warme_overdracht: bool
    approval: Approval | None
    approval_valid: bool  # toestemming Ja by the person the dossier rule requires
    exam: Uitslag | None
    bevorderd: bool | None
    moves: tuple[Move, ...]
    status_dates: tuple[StatusEvent, ...]
    expected_signals: tuple[ExpectedSignal, ...]
    left_cohort: date | None  # vervolg_havo: the day the school records the other choice


@dataclass(frozen=True, slots=True)
class StudentRecord:
    student: Student
    scenario: Scenario

    def gemeente_on(self, day: date) -> Gemeentecode:
        """Municipality of residence on `day`, following the scenario's moves."""
        current = self.student.gemeente
        for move in self.scenario.moves:
            if move.date <= day:
                current = move.gemeente
        return current


# --- field access with messages that name the field and never echo a personal value ---------


def _prefixed(exc: InvalidRecord, prefix: str) -> InvalidRecord:
    if not prefix:
        return exc
    return InvalidRecord(exc.reason, field=f"{prefix}.{exc.field}", rule=exc.rule)


class _Obj:
    """A JSON/YAML object with typed getters; `where` is the dotted path for messages."""

    __slots__ = ("data", "where")

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise InvalidRecord("must be an object", field=where or "record", rule="FIELD-TYPE")
        self.data: dict[str, Any] = data
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def raw(self, key: str) -> Any:
        try:
            return self.data[key]
        except KeyError:
            raise InvalidRecord("is missing", field=self.path(key), rule="FIELD-MISSING") from None

    def _typed(self, key: str, kind: type[T], what: str) -> T:
        value = self.raw(key)
        # bool is an int in Python; a count or level must not silently accept true/false.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InvalidRecord(f"must be {what}", field=self.path(key), rule="FIELD-TYPE")
        return value

    # text/flag/integer check the common case inline: 150,000 records call them 40 times each.
    def text(self, key: str) -> str:
        value = self.data.get(key)
        return value if type(value) is str else self._typed(key, str, "a string")

    def opt_text(self, key: str) -> str | None:
        return None if self.raw(key) is None else self.text(key)

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        return value if type(value) is bool else self._typed(key, bool, "true or false")

    def opt_flag(self, key: str) -> bool | None:
        return None if self.raw(key) is None else self.flag(key)

    def integer(self, key: str) -> int:
        value = self.data.get(key)
        return value if type(value) is int else self._typed(key, int, "an integer")

    def day(self, key: str) -> date:
        value = self.raw(key)
        if isinstance(value, date):  # YAML turns unquoted ISO dates into dates already
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        # date.fromisoformat's own message quotes the value: a birth date is personal data.
        raise InvalidRecord(
            "must be a date written YYYY-MM-DD", field=self.path(key), rule="DATE-FORMAT"
        )

    def opt_day(self, key: str) -> date | None:
        return None if self.raw(key) is None else self.day(key)

    def obj(self, key: str) -> _Obj:
        return _Obj(self.raw(key), self.path(key))

    def opt_obj(self, key: str) -> _Obj | None:
        return None if self.raw(key) is None else self.obj(key)

    def items(self, key: str) -> list[_Obj]:
        items = self._typed(key, list, "a list")
        return [_Obj(item, f"{self.path(key)}[{i}]") for i, item in enumerate(items)]

    def parse(self, key: str, parser: Callable[[Any], T]) -> T:
        """Run a domain parser on one field; its error is renamed to this field's path."""
        value = self.raw(key)
        try:
            return parser(value)
        except InvalidRecord as exc:
            raise InvalidRecord(exc.reason, field=self.path(key), rule=exc.rule) from None

    def enum(self, key: str, kind: type[E]) -> E:
        value = self.text(key)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise InvalidRecord(
                f"must be one of {allowed}", field=self.path(key), rule="FIELD-VALUE"
            ) from None

    def build(self, factory: Callable[[], T]) -> T:
        """Construct a domain object; its own field name gets this object's path in front."""
        try:
            return factory()
        except InvalidRecord as exc:
            raise _prefixed(exc, self.where) from None


# --- region.yaml ----------------------------------------------------------------------------


def load_region(directory: Path) -> Region:
    """Read `region.yaml` of a region directory into domain objects, checking every reference."""
    path = Path(directory) / REGION_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegionDataError(
            "file not found (is this a region directory?)",
            field="region",
            rule="REGION-MISSING",
            record=str(path),
        ) from None
    # One parse gives both the data and the line of every list item (for messages). libyaml's
    # loader when present: the pure-Python one needs seconds for a national region.
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        lines = _item_lines(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RegionDataError(
            f"not valid YAML ({getattr(exc, 'problem', None) or 'parse error'})",
            field="yaml",
            rule="YAML-SYNTAX",
            record=f"{path} line {line}",
        ) from None
    finally:
        loader.dispose()
    return region_from_mapping(data, str(path), lines)


def _item_lines(root: yaml.Node | None) -> dict[str, int]:
    """Line (1-based) of each top-level key and of each item of a top-level list: `key[i]`."""
    lines: dict[str, int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key_node, value_node in root.value:
        key = str(key_node.value)
        lines[key] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.SequenceNode):
            for i, item in enumerate(value_node.value):
                lines[f"{key}[{i}]"] = item.start_mark.line + 1
    return lines


def region_from_mapping(data: object, source: str, lines: dict[str, int] | None = None) -> Region:
    """Build a `Region` from the parsed region.yaml; errors name `source` and the line."""
    lines = lines or {}
    current = ""  # the list item being read, so an error can name its line

    def where() -> str:
        key = current.split(".", 1)[0]
        line = lines.get(key) or lines.get(key.split("[", 1)[0])
        return f"{source} line {line}" if line else source

    try:
        top = _Obj(data, "")
        current = "school_year"
        year = top.parse("school_year", lambda v: SchoolYear.parse(str(v)))
        current = "calendar"
        cal = top.obj("calendar")
        calendar = cal.build(
            lambda: SchoolCalendar(
                year,
                registration_deadline=cal.day("registration_deadline"),
                zomerlek_date=cal.day("zomerlek_date"),
                afgewezen_grace_days=cal.integer("afgewezen_grace_days"),
                # Optional: regions written before it existed take the default.
                diploma_date=(cal.opt_day("diploma_date") if "diploma_date" in cal.data else None)
                or date.min,
            )
        )
        regions: list[DoorstroompuntRegion] = []
        for item in top.items("doorstroompunt_regions"):
            current = item.where
            regions.append(
                DoorstroompuntRegion(
                    code=item.parse("code", RegionCode.parse),
                    name=item.text("name"),
                    contact_gemeente=item.parse("contact_gemeente", Gemeentecode.parse),
                )
            )
            _unique(regions[-1].code, {r.code for r in regions[:-1]}, item.path("code"))
        region_codes = {r.code for r in regions}
        municipalities: list[Municipality] = []
        gemeenten: set[Gemeentecode] = set()
        for item in top.items("municipalities"):
            current = item.where
            m = Municipality(
                code=item.parse("code", Gemeentecode.parse),
                name=item.text("name"),
                region=item.parse("region", RegionCode.parse),
                oin=item.parse("oin", Oin.parse),
            )
            _unique(m.code, gemeenten, item.path("code"))
            _known(m.region in region_codes, item.path("region"), "a doorstroompunt_regions code")
            municipalities.append(m)
            gemeenten.add(m.code)
        region_of = {m.code: m.region for m in municipalities}
        for i, r in enumerate(regions):
            current = f"doorstroompunt_regions[{i}]"
            _known(
                region_of.get(r.contact_gemeente) == r.code,
                f"{current}.contact_gemeente",
                "a municipality in this Doorstroompunt region",
            )
        schools: list[VoSchool] = []
        locations: set[BrinVestiging] = set()
        for item in top.items("vo_schools"):
            current = item.where
            s = VoSchool(
                location=_location(item),
                name=item.text("name"),
                oin=item.parse("oin", Oin.parse),
                gemeente=item.parse("gemeente", Gemeentecode.parse),
                sis=item.text("sis"),
            )
            _known(s.sis in SIS_PRODUCTS, item.path("sis"), f"one of {', '.join(SIS_PRODUCTS)}")
            _known(s.gemeente in gemeenten, item.path("gemeente"), "a municipalities code")
            _unique(s.location, locations, item.path("brin"))
            schools.append(s)
            locations.add(s.location)
        institutions: list[MboInstitution] = []
        brins = {s.brin for s in schools}  # an mbo BRIN must not be a vo school's either
        for item in top.items("mbo_institutions"):
            current = item.where
            inst = MboInstitution(
                brin=item.parse("brin", Brin.parse),
                name=item.text("name"),
                oin=item.parse("oin", Oin.parse),
                transport=item.text("transport"),
            )
            _known(
                inst.transport in TRANSPORTS,
                item.path("transport"),
                f"one of {', '.join(TRANSPORTS)}",
            )
            _unique(inst.brin, brins, item.path("brin"))
            institutions.append(inst)
            brins.add(inst.brin)
        current = "code"
        seed = top.data.get("seed")
        return Region(
            code=top.text("code"),
            name=top.text("name"),
            school_year=year,
            calendar=calendar,
            regions=tuple(regions),
            municipalities=tuple(municipalities),
            vo_schools=tuple(schools),
            mbo_institutions=tuple(institutions),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        )
    except RegionDataError:
        raise
    except InvalidRecord as exc:
        raise RegionDataError(exc.reason, field=exc.field, rule=exc.rule, record=where()) from None


def _location(item: _Obj) -> BrinVestiging:
    brin = item.parse("brin", Brin.parse)
    vestiging = item.text("vestiging")
    return item.build(lambda: BrinVestiging(brin, vestiging))


def _unique(value: object, earlier: set[Any], path: str) -> None:
    if value in earlier:
        raise InvalidRecord(f"{value} appears twice", field=path, rule="REGION-DUPLICATE")


def _known(ok: bool, path: str, what: str) -> None:
    if not ok:
        raise InvalidRecord(f"is not {what} of this region", field=path, rule="REGION-REFERENCE")


# --- students.jsonl -------------------------------------------------------------------------


def iter_students(directory: Path) -> Iterator[StudentRecord]:
    """Stream `students.jsonl`, every record validated through the domain types.

    Reads region.yaml first: students take their school year from it and every school,
    municipality and mbo institution they name must exist in the region.
    """
    directory = Path(directory)
    region = load_region(directory)
    path = directory / STUDENTS_FILE
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue  # a trailing blank line is harmless
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                # exc.msg describes the syntax problem only; the line itself is never echoed.
                raise RegionDataError(
                    f"not valid JSON ({exc.msg} at column {exc.colno})",
                    field="json",
                    rule="JSON-SYNTAX",
                    record=f"{path} line {number}",
                ) from None
            try:
                yield student_from_mapping(obj, region)
            except InvalidRecord as exc:
                raise RegionDataError(
                    exc.reason, field=exc.field, rule=exc.rule, record=f"{path} line {number}"
                ) from None


def _name(o: _Obj) -> Name:
    return o.build(
        lambda: Name(
            voornamen=o.text("voornamen"),
            achternaam=o.text("achternaam"),
            voorvoegsel=o.text("voorvoegsel"),
            roepnaam=o.text("roepnaam"),
        )
    )


def _address(o: _Obj | None) -> Address | None:
    if o is None:
        return None
    return Address(
        straat=o.text("straat"),
        huisnummer=o.text("huisnummer"),
        postcode=o.parse("postcode", Postcode.parse),
        plaats=o.text("plaats"),
    )


# Codes of the region's own parties are looked up as written first: the region already holds
# them as validated domain values, and parsing the same few codes 150,000 times is waste.


def _gemeente(o: _Obj, key: str, region: Region) -> Gemeentecode:
    known = region.municipality(o.text(key))
    if known is not None:
        return known.code
    code = o.parse(key, Gemeentecode.parse)  # names the format problem, if that is the problem
    _known(region.municipality(code) is not None, o.path(key), "a municipality")
    return code


def _mbo(o: _Obj, key: str, region: Region) -> Brin | None:
    value = o.raw(key)
    if value is None:
        return None
    known = region.mbo_institution(value) if isinstance(value, str) else None
    if known is not None:
        return known.brin
    brin = o.parse(key, Brin.parse)
    _known(region.mbo_institution(brin) is not None, o.path(key), "an mbo institution")
    return brin


def _status_brin(o: _Obj, region: Region) -> Brin:
    brin = _mbo(o, "brin", region)
    if brin is None:
        raise InvalidRecord("is missing", field=o.path("brin"), rule="FIELD-MISSING")
    return brin


def _school(o: _Obj, region: Region) -> BrinVestiging:
    known = region.vo_school(o.text("school"))
    if known is not None:
        return known.location
    school = _school(o, region)
    return school


def student_from_mapping(data: object, region: Region) -> StudentRecord:
    """One students.jsonl object as domain objects; raises `InvalidRecord` naming the field."""
    o = _Obj(data, "")
    school = _school(o, region)
    # personal_number enforces "exactly one of the two"; its errors carry positions only.
    identifier = o.build(lambda: personal_number(o.text("bsn"), o.text("onderwijsnummer")))
    adres_geheim = o.flag("adres_geheim")
    contact = o.obj("contact")
    guardians = tuple(
        Guardian(
            name=_name(g),
            contact=Contact(phone=g.text("phone"), email=g.text("email")),
            relation=g.text("relation"),
        )
        for g in o.items("guardians")
    )
    student = o.build(
        lambda: Student(
            leerlingid=o.text("leerlingid"),
            school=school,
            identifier=identifier,
            name=_name(o),
            birth_date=o.day("geboortedatum"),
            gemeente=_gemeente(o, "gemeente", region),
            address=_address(o.opt_obj("adres")),
            adres_geheim=adres_geheim,
            contact=Contact(phone=contact.text("phone"), email=contact.text("email")),
            guardians=guardians,
            level=o.enum("level", Level),
            school_year=region.school_year,
            leaving_year=o.flag("leaving_year"),
            leerjaar=o.integer("leerjaar"),
        )
    )
    return StudentRecord(student, _scenario(o.obj("scenario"), student, region))


def _scenario(s: _Obj, student: Student, region: Region) -> Scenario:
    outcome = s.enum("outcome", Outcome)
    applies_to = _mbo(s, "applies_to", region)
    alternative = _mbo(s, "alternative", region)
    programme: Programme | None = None
    if s.raw("crebo") is not None:
        crebo = s.parse("crebo", Crebo.parse)
        programme = s.build(lambda: Programme(crebo, s.integer("mbo_level")))
    approval: Approval | None = None
    a = s.opt_obj("approval")
    if a is not None:
        by = None if a.raw("by") is None else a.enum("by", Approver)
        approval = Approval(by, a.day("date"), a.enum("toestemming", JaNee))
    exam = None if s.raw("exam") is None else s.enum("exam", Uitslag)
    bevorderd = s.opt_flag("bevorderd")
    moves = tuple(
        Move(
            date=m.day("date"),
            gemeente=_gemeente(m, "gemeente", region),
            address=_address(m.opt_obj("adres")),
        )
        for m in s.items("moves")
    )
    statuses = tuple(
        StatusEvent(
            date=e.day("date"),
            brin=_status_brin(e, region),
            status=e.enum("status", RegistrationStatus),
        )
        for e in s.items("status_dates")
    )
    signals = tuple(
        ExpectedSignal(
            kind=e.enum("kind", SignalKind),
            date=e.day("date"),
            gemeente=_gemeente(e, "gemeente", region),
        )
        for e in s.items("expected_signals")
    )
    scenario = Scenario(
        outcome=outcome,
        applies_to=applies_to,
        alternative=alternative,
        programme=programme,
        support_needs=s.text("support_needs"),
        warme_overdracht=s.flag("warme_overdracht"),
        approval=approval,
        approval_valid=s.flag("approval_valid"),
        exam=exam,
        bevorderd=bevorderd,
        moves=moves,
        status_dates=statuses,
        expected_signals=signals,
        left_cohort=s.opt_day("left_cohort"),
    )
    _check_scenario(scenario, student, s)
    return scenario


def _check_scenario(sc: Scenario, student: Student, s: _Obj) -> None:
    """Cheap consistency rules, so a hand-edited scenario cannot tell an impossible story."""

    def fail(key: str, message: str) -> None:
        raise InvalidRecord(message, field=s.path(key), rule="SCENARIO-CONSISTENT")

    if (sc.exam is None) == (sc.bevorderd is None):
        fail("exam", "exactly one of exam and bevorderd is required")
    applying = sc.outcome not in (Outcome.GEEN_AANMELDING, Outcome.VERVOLG_HAVO)
    if applying != (sc.applies_to is not None):
        fail("applies_to", f"must be {'set' if applying else 'null'} for outcome {sc.outcome}")
    if applying != (sc.programme is not None):
        fail("crebo", f"must be {'set' if applying else 'null'} for outcome {sc.outcome}")
    needs_alternative = sc.outcome is Outcome.NIET_TOT_INSCHRIJVING_ALTERNATIEF
    if needs_alternative != (sc.alternative is not None):
        fail("alternative", f"must be {'set' if needs_alternative else 'null'} for {sc.outcome}")
    if sc.alternative is not None and sc.alternative == sc.applies_to:
        fail("alternative", "must differ from applies_to")
    valid = (
        sc.approval is not None
        and sc.approval.toestemming is JaNee.JA
        and sc.approval.by is required_approver(student.birth_date, sc.approval.date)
    )
    if valid != sc.approval_valid:
        fail("approval_valid", f"must be {str(valid).lower()} for this approval")
    days = [e.date for e in sc.status_dates]
    if days != sorted(days):
        fail("status_dates", "must be in date order")
    move_days = [m.date for m in sc.moves]
    if move_days != sorted(move_days):
        fail("moves", "must be in date order")
    for i, m in enumerate(sc.moves):
        if (m.address is None) != student.adres_geheim:
            fail(f"moves[{i}].adres", "must be null exactly when the address is secret")
    if (sc.outcome is Outcome.VERVOLG_HAVO) != (sc.left_cohort is not None):
        fail("left_cohort", "is set exactly for outcome vervolg_havo")
