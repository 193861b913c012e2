"""The SIS mapping engine: a declarative YAML file turns a `RawRecord`'s fields into a `Student`.

Onboarding a school whose SIS writes a new export dialect is a new file in `mappings/sis/`; the
chain is in docs/sis.md. A mapping file:

```yaml
name: magister                      # how schools refer to it (the registry's `mapping`)
description: Magister-style leerlingen.csv
format: csv                         # csv | json | xml, with the block of that name:
csv: {encoding: utf-8-sig, delimiter: ";"}          # a Python codec; one character
#   json: {records: leerlingen}     # the key holding the record list in a page object
#   xml: {record: leerling, namespace: "urn:...", repeated: [verzorgers.verzorger]}
dates: "%d-%m-%Y"                   # strftime pattern of every date (default %Y-%m-%d)
booleans: {true: [J], false: [N, ""]}   # spellings, compared case-insensitively
max_length: 200                     # longest value of any field, unless the field says otherwise
fields:                             # canonical target -> how to read it
  leerlingid: {source: Stamnr, max_length: 64}
  huisnummer: {source: [huisnummer, huisnummerToevoeging], join: ""}  # non-empty parts joined
  level: {source: Leerweg, codes: {"VMBO BB": vmbo_bb}}               # export code -> Level
  leerjaar: {source: Leerjaar, min: 1, max: 6}
guardians:
  slots: [1, 2]                     # "{n}" in a source becomes each slot in turn; or
  # index: auto                     # 0, 1, 2, ... while any source of that index exists
  fields: {achternaam: {source: "Verzorger{n} Achternaam"}}
```

Field keys: `source` (a flat field name, or a list joined with `join`), `type` (optional: each
target has exactly one type, stating it documents and checks it), `required` (the targets a
Student cannot do without are required by default), `max_length`, `codes` (only on `level`),
`min`/`max` (only on integers). Unknown keys, targets or types are refused when the mapping is
loaded, with the file and line. All scalars are read as the text written: `J`, `NO` and `true`
stay strings, so code lists and boolean spellings mean what they say.

Types (each target has one; values are stripped first, and an empty value is "not given"):
text; date (the `dates` pattern; the birth date must also give an age of 10-25 on the school
year's first day); bsn (elfproef; 8 digits is a BSN that lost its leading zero); onderwijsnummer;
gemeentecode (GM0363, 0363 or 363); postcode (spaces and case ignored); phone (Dutch numbers
become national digits: 06-12345678 and +31612345678 are 0612345678); email; boolean (the
`booleans` spellings); integer (`min`/`max`); code (the `codes` table, or the hub's own level
names when there is none).

Per record, `to_student` raises `InvalidRecord` with `field` = "target (source)", a rule and the
record's ref; messages name fields, rules and codes, never a value from the export.

Speed: `to_student` runs 150,000 times in a national pull, so everything that does not depend
on the record is decided at load time: each field becomes one closure that reads its column,
checks emptiness and length and converts; dates in `%d-%m-%Y` or `%Y-%m-%d` are sliced instead of
going through `strptime` (ten times slower), and each spelling is parsed once; `_student` unpacks
the converters once per record and builds the domain objects with positional arguments.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

import yaml

from mappings.sis_formats import (
    UTF8_BOM,
    CsvFormat,
    FormatSpec,
    JsonFormat,
    RawRecord,
    XmlFormat,
    records_from_bytes,
)
from overstap.domain.calendar import SchoolYear, age_on
from overstap.domain.errors import ConfigurationError, InvalidRecord
from overstap.domain.identifiers import BrinVestiging, Bsn, Gemeentecode, Onderwijsnummer, Postcode
from overstap.domain.student import Address, Contact, Guardian, Level, Name, Student

MAPPINGS_DIR = Path(__file__).with_name("sis")
_REPO_ROOT = Path(__file__).resolve().parent.parent

KINDS = (
    "text",
    "date",
    "bsn",
    "onderwijsnummer",
    "gemeentecode",
    "postcode",
    "phone",
    "email",
    "boolean",
    "integer",
    "code",
)
# The order matters: SisMapping._student unpacks its converters in this order.
STUDENT_TARGETS: dict[str, str] = {
    "leerlingid": "text",
    "voornamen": "text",
    "roepnaam": "text",
    "voorvoegsel": "text",
    "achternaam": "text",
    "geboortedatum": "date",
    "bsn": "bsn",
    "onderwijsnummer": "onderwijsnummer",
    "straat": "text",
    "huisnummer": "text",
    "postcode": "postcode",
    "plaats": "text",
    "gemeente": "gemeentecode",
    "adres_geheim": "boolean",
    "phone": "phone",
    "email": "email",
    "level": "code",
    "leerjaar": "integer",
    "leaving_year": "boolean",
}
GUARDIAN_TARGETS: dict[str, str] = {
    "voornamen": "text",
    "roepnaam": "text",
    "voorvoegsel": "text",
    "achternaam": "text",
    "relation": "text",
    "phone": "phone",
    "email": "email",
}
# What a Student cannot be built without; bsn/onderwijsnummer are checked as a pair.
REQUIRED_TARGETS = (
    "leerlingid",
    "voornamen",
    "achternaam",
    "geboortedatum",
    "gemeente",
    "level",
    "leerjaar",
)
GUARDIAN_REQUIRED = ("voornamen", "achternaam")
_ADDRESS_PARTS = ("straat", "huisnummer", "postcode", "plaats")
_TOP_KEYS = frozenset(
    {
        "name",
        "description",
        "format",
        "csv",
        "json",
        "xml",
        "dates",
        "booleans",
        "max_length",
        "fields",
        "guardians",
    }
)
_FIELD_KEYS = frozenset({"source", "type", "required", "max_length", "join", "codes", "min", "max"})
_FORMAT_KEYS = {
    "csv": frozenset({"encoding", "delimiter"}),
    "json": frozenset({"records"}),
    "xml": frozenset({"record", "namespace", "repeated"}),
}
_INTEGER_RANGE = {"leerjaar": (1, 6)}
_MIN_AGE, _MAX_AGE = 10, 25  # on the school year's first day; outside is a wrong birth date
# More guardians than this is not a family but a broken (or hostile) export; it also bounds the
# per-index slots `index: auto` compiles.
_MAX_GUARDIANS = 10


class MappingError(ConfigurationError):
    """A mapping file that cannot be used; the message names the file, the line and the key."""

    def __init__(self, file: str, line: int, key: str, why: str) -> None:
        super().__init__(f"{file} line {line}", f"{key}: {why}")
        self.args = (f"{file} line {line}: {key}: {why}",)
        self.file = file
        self.line = line


# --- reading the YAML with its line numbers -------------------------------------------------


class _Yaml:
    """Typed access to composed YAML nodes; every error names the file, line and dotted key."""

    def __init__(self, file: str) -> None:
        self.file = file
        # value node -> its key node: a block value starts a line below its key, and "line 14"
        # should point at `fields:`, not at whatever happens to be mapped first under it.
        self.key_of: dict[int, yaml.Node] = {}

    def error(self, node: yaml.Node, key: str, why: str) -> MappingError:
        at = self.key_of.get(id(node), node)
        return MappingError(self.file, at.start_mark.line + 1, key, why)

    def mapping(
        self, node: yaml.Node, key: str, allowed: Iterable[str] | None = None
    ) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, key, "must be a mapping (key: value)")
        known = frozenset(allowed) if allowed is not None else None
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            name = self.scalar(k, key)
            where = f"{key}.{name}" if key else name
            if known is not None and name not in known:
                raise self.error(k, where, f"unknown key (known: {', '.join(sorted(known))})")
            if name in out:
                raise self.error(k, where, "given twice")
            out[name] = v
            self.key_of[id(v)] = k
        return out

    def scalar(self, node: yaml.Node, key: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, key, "must be a single value")
        return str(node.value)

    def sequence(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, key, "must be a list")
        return list(node.value)

    def strings(self, node: yaml.Node, key: str) -> list[str]:
        """A value or a list of values."""
        if isinstance(node, yaml.SequenceNode):
            return [self.scalar(item, key) for item in node.value]
        return [self.scalar(node, key)]

    def flag(self, node: yaml.Node, key: str) -> bool:
        text = self.scalar(node, key).lower()
        if text not in ("true", "false"):
            raise self.error(node, key, "must be true or false")
        return text == "true"

    def integer(self, node: yaml.Node, key: str) -> int:
        text = self.scalar(node, key)
        if not (text.isascii() and text.lstrip("-").isdigit()):
            raise self.error(node, key, "must be a whole number")
        return int(text)


# --- the compiled mapping ---------------------------------------------------------------------

Convert = Callable[[dict[str, str]], Any]


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One target field, compiled: `convert(fields)` gives its value or raises InvalidRecord."""

    target: str
    sources: tuple[str, ...]
    label: str  # "geboortedatum (Geb.datum)": how messages name it
    kind: str
    required: bool
    convert: Convert


# The order in which `_guardians` converts a guardian's fields (and so which error comes first).
_GUARDIAN_ORDER = (
    "voornamen",
    "achternaam",
    "voorvoegsel",
    "roepnaam",
    "phone",
    "email",
    "relation",
)


@dataclass(frozen=True, slots=True)
class GuardianSlot:
    """One guardian's fields; `convert` has every guardian target (unmapped ones give None).

    `converters` holds the same functions in the order `_guardians` calls them
    (`_GUARDIAN_ORDER`): one tuple unpacking per guardian instead of seven lookups.
    """

    sources: tuple[str, ...]
    rules: dict[str, FieldRule]
    convert: dict[str, Convert]
    converters: tuple[Convert, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "converters", tuple(self.convert[t] for t in _GUARDIAN_ORDER))


def _unmapped(f: dict[str, str]) -> None:
    return None


@dataclass(slots=True)
class SisMapping:
    """A loaded, compiled mapping: `format` for the parser, `to_student` for each record."""

    name: str
    description: str
    file: str
    format: FormatSpec
    date_format: str
    rules: dict[str, FieldRule]
    guardian_slots: tuple[GuardianSlot, ...] = ()
    # index: auto: the guardian sources with "{n}" and the compiler of one index
    guardian_templates: tuple[str, ...] = ()
    guardian_auto: Callable[[int], GuardianSlot] | None = None
    _auto_slots: dict[int, GuardianSlot] = field(default_factory=dict)
    # every Student target's converter (unmapped ones give None) in STUDENT_TARGETS order: one
    # tuple unpacking per record instead of a dict lookup per field
    _convert: tuple[Convert, ...] = field(init=False)
    _id_rules: tuple[FieldRule | None, FieldRule | None] = field(init=False)

    def __post_init__(self) -> None:
        convert: dict[str, Convert] = dict.fromkeys(STUDENT_TARGETS, _unmapped)
        convert.update({t: r.convert for t, r in self.rules.items()})
        self._convert = tuple(convert.values())
        self._id_rules = (self.rules.get("bsn"), self.rules.get("onderwijsnummer"))

    @property
    def format_name(self) -> str:
        if isinstance(self.format, CsvFormat):
            return "csv"
        return "json" if isinstance(self.format, JsonFormat) else "xml"

    def label(self, target: str) -> str:
        rule = self.rules.get(target)
        return rule.label if rule is not None else target

    def to_student(
        self, record: RawRecord, *, school: BrinVestiging, school_year: SchoolYear
    ) -> Student:
        """The record as a Student, or InvalidRecord naming the record, the field and the rule."""
        if record.problem is not None:
            raise record.problem
        try:
            return self._student(record.fields, school, school_year)
        except InvalidRecord as exc:
            raise exc.for_record(record.ref) from None

    def _student(self, f: dict[str, str], school: BrinVestiging, year: SchoolYear) -> Student:
        # The converters are called in a fixed order: with several bad fields, the first one
        # in this order is the one reported.
        (
            c_leerlingid, c_voornamen, c_roepnaam, c_voorvoegsel, c_achternaam, c_geboortedatum,
            _, _, c_straat, c_huisnummer, c_postcode, c_plaats, c_gemeente, c_adres_geheim,
            c_phone, c_email, c_level, c_leerjaar, c_leaving_year,
        ) = self._convert  # fmt: skip
        identifier = self._identifier(f)
        birth_date: date = c_geboortedatum(f)
        first_day = year.first_day
        if birth_date >= first_day or not _MIN_AGE <= age_on(birth_date, first_day) <= _MAX_AGE:
            raise InvalidRecord(
                f"is not before the school year or gives an age outside {_MIN_AGE}-{_MAX_AGE} "
                "on its first day",
                field=self.label("geboortedatum"),
                rule="DATE-IMPOSSIBLE",
            )
        adres_geheim = c_adres_geheim(f) or False
        # The address, in order: all four parts, none, or ADDRESS-INCOMPLETE.
        straat, huisnummer = c_straat(f), c_huisnummer(f)
        postcode, plaats = c_postcode(f), c_plaats(f)
        address: Address | None = None
        if straat and huisnummer and postcode and plaats:
            address = Address(straat, huisnummer, postcode, plaats)
        elif straat or huisnummer or postcode or plaats:
            self._incomplete_address((straat, huisnummer, postcode, plaats))
        guardians = self._guardians(f) if self.guardian_slots or self.guardian_auto else ()
        # Positional arguments in field order (a keyword costs a name match per call, and this
        # runs for every record); the comments name the fields.
        try:
            return Student(
                c_leerlingid(f),  # leerlingid
                school,
                identifier,
                Name(
                    c_voornamen(f),  # voornamen
                    c_achternaam(f),  # achternaam
                    c_voorvoegsel(f) or "",  # voorvoegsel
                    c_roepnaam(f) or "",  # roepnaam
                ),
                birth_date,
                c_gemeente(f),  # gemeente
                address,
                adres_geheim,
                Contact(c_phone(f) or "", c_email(f) or ""),  # phone, email
                guardians,
                c_level(f),  # level
                year,  # school_year
                c_leaving_year(f) or False,  # leaving_year
                c_leerjaar(f),  # leerjaar
            )
        except InvalidRecord as exc:
            if exc.field not in self.rules:
                raise
            # A domain constructor names the canonical field: add where it came from.
            raise InvalidRecord(exc.reason, field=self.label(exc.field), rule=exc.rule) from None

    def _identifier(self, f: dict[str, str]) -> Bsn | Onderwijsnummer:
        bsn, onr = self._id_rules
        has_bsn = bsn is not None and _present(f, bsn.sources)
        has_onr = onr is not None and _present(f, onr.sources)
        if has_bsn == has_onr:
            labels = " / ".join(r.label for r in (bsn, onr) if r is not None)
            how = "both are given" if has_bsn else "neither is given"
            raise InvalidRecord(
                f"exactly one of BSN and onderwijsnummer is required, {how}",
                field=labels,
                rule="ID-EXACTLY-ONE",
            )
        chosen = bsn if has_bsn else onr
        assert chosen is not None  # has_bsn or has_onr, and each implies its rule
        result: Bsn | Onderwijsnummer = chosen.convert(f)
        return result

    def _incomplete_address(self, parts: tuple[object, ...]) -> None:
        missing = next(t for t, v in zip(_ADDRESS_PARTS, parts, strict=True) if not v)
        raise InvalidRecord(
            "is empty while other parts of the address are given",
            field=self.label(missing),
            rule="ADDRESS-INCOMPLETE",
        )

    def _guardians(self, f: dict[str, str]) -> tuple[Guardian, ...]:
        guardians: list[Guardian] = []
        for slot in self._slots(f):
            if not _present(f, slot.sources):
                continue  # an entirely empty slot is no guardian
            c_voornamen, c_achternaam, c_voorvoegsel, c_roepnaam, c_phone, c_email, c_relation = (
                slot.converters
            )
            voornamen, achternaam = c_voornamen(f), c_achternaam(f)
            if voornamen is None or achternaam is None:
                target = "voornamen" if voornamen is None else "achternaam"
                raise InvalidRecord(
                    "is empty while other fields of this guardian are given",
                    field=slot.rules[target].label,
                    rule="GUARDIAN-INCOMPLETE",
                )
            guardians.append(
                Guardian(  # positional, in field order, as in _student
                    Name(voornamen, achternaam, c_voorvoegsel(f) or "", c_roepnaam(f) or ""),
                    Contact(c_phone(f) or "", c_email(f) or ""),  # phone, email
                    c_relation(f) or "ouder",  # relation
                )
            )
        return tuple(guardians)

    def _slots(self, f: dict[str, str]) -> Iterable[GuardianSlot]:
        if self.guardian_auto is None:
            return self.guardian_slots
        slots: list[GuardianSlot] = []
        n = 0
        while True:
            slot = self._auto_slots.get(n)
            if slot is None:
                # setdefault: threads sharing this mapping may compile the same index at once.
                slot = self._auto_slots.setdefault(n, self.guardian_auto(n))
            if not any(s in f for s in slot.sources):
                return slots
            if n == _MAX_GUARDIANS:
                raise InvalidRecord(
                    f"has more than {_MAX_GUARDIANS} parents/guardians",
                    field="guardians",
                    rule="GUARDIANS-TOO-MANY",
                )
            slots.append(slot)
            n += 1

    def sources(self) -> list[tuple[str, bool]]:
        """(source, required) of every student field, for `sis check`."""
        return [(s, r.required) for r in self.rules.values() for s in r.sources]


def _present(f: dict[str, str], sources: tuple[str, ...]) -> bool:
    for s in sources:
        v = f.get(s)
        if v and not v.isspace():
            return True
    return False


# --- compiling fields -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Settings:
    date_format: str
    booleans: dict[str, bool]
    max_length: int


def _human_date(fmt: str) -> str:
    return fmt.replace("%d", "dd").replace("%m", "mm").replace("%Y", "yyyy")


def _date_parser(fmt: str, label: str) -> Callable[[str], date]:
    """Slicing for the two common formats, strptime for the rest; both refuse the same inputs."""
    human = _human_date(fmt)

    def bad_format() -> InvalidRecord:
        return InvalidRecord(f"is not written as {human}", field=label, rule="DATE-FORMAT")

    def impossible() -> InvalidRecord:
        return InvalidRecord("is not a date that exists", field=label, rule="DATE-IMPOSSIBLE")

    slices: tuple[slice, slice, slice, int, int] | None = None
    if fmt == "%d-%m-%Y":
        slices = (slice(6, 10), slice(3, 5), slice(0, 2), 2, 5)
    elif fmt == "%Y-%m-%d":
        slices = (slice(0, 4), slice(5, 7), slice(8, 10), 4, 7)
    if slices is not None:
        ys, ms, ds, dash1, dash2 = slices
        # A school's birth dates span a few years: each spelling is parsed once. Bounded, so
        # an export full of garbage cannot grow it without limit; refusals are not kept.
        known: dict[str, date] = {}

        def sliced(v: str) -> date:
            day = known.get(v)
            if day is not None:
                return day
            if len(v) != 10 or v[dash1] != "-" or v[dash2] != "-":
                raise bad_format()
            y, m, d = v[ys], v[ms], v[ds]
            if not (y.isdigit() and m.isdigit() and d.isdigit() and (y + m + d).isascii()):
                raise bad_format()
            try:
                day = date(int(y), int(m), int(d))
            except ValueError:
                raise impossible() from None
            if len(known) < _DATE_CACHE_SIZE:
                known[v] = day
            return day

        return sliced

    def general(v: str) -> date:
        try:
            return datetime.strptime(v, fmt).date()
        except ValueError as exc:
            # strptime's messages quote the value; say only which of the two rules failed.
            if "out of range" in str(exc) or "day is" in str(exc):
                raise impossible() from None
            raise bad_format() from None

    return general


_DATE_CACHE_SIZE = 20_000  # about 50 years of distinct dates
_PHONE_NOISE = str.maketrans("", "", " -().")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _phone(v: str, label: str) -> str:
    """National digits for Dutch numbers (06-12345678, +31612345678 -> 0612345678)."""
    if len(v) == 10 and v[0] == "0" and v.isascii() and v.isdigit():
        return v  # already national digits: most numbers, and the cheapest check
    # Slices, not startswith: the same test without a method call.
    s = v.translate(_PHONE_NOISE)
    if s[:3] == "+31":
        s = "0" + s[3:]
    elif s[:4] == "0031":
        s = "0" + s[4:]
    if s[:1] == "+":
        ok = s[1:].isascii() and s[1:].isdigit() and 8 <= len(s) - 1 <= 15
    else:
        ok = len(s) == 10 and s[0] == "0" and s.isascii() and s.isdigit()
    if not ok:
        raise InvalidRecord(
            "is not a phone number (10 digits starting with 0, or +country code)",
            field=label,
            rule="PHONE-FORMAT",
        )
    return s


def _renamed(parse: Callable[[str], Any], label: str) -> Callable[[str], Any]:
    def run(v: str) -> Any:
        try:
            return parse(v)
        except InvalidRecord as exc:
            raise InvalidRecord(exc.reason, field=label, rule=exc.rule) from None

    return run


def _parser(
    kind: str,
    label: str,
    settings: _Settings,
    codes: dict[str, Level] | None,
    bounds: tuple[int, int],
) -> Callable[[str], Any] | None:
    """How one kind turns stripped, non-empty text into its value; None: text stays text."""
    if kind == "text":
        return None
    if kind == "date":
        return _date_parser(settings.date_format, label)
    # partial, not a lambda: one Python call less per value
    if kind == "bsn":
        return partial(Bsn.parse, field_name=label)
    if kind == "onderwijsnummer":
        return partial(Onderwijsnummer.parse, field_name=label)
    if kind == "postcode":
        return _renamed(Postcode.parse, label)
    if kind == "phone":
        return partial(_phone, label=label)
    if kind == "gemeentecode":
        # A school's students live in a few dozen municipalities: parse each spelling once.
        # Bounded, so an export full of garbage cannot grow it without limit.
        known: dict[str, Gemeentecode] = {}

        def gemeente(v: str) -> Gemeentecode:
            code = known.get(v)
            if code is not None:
                return code
            try:
                code = Gemeentecode.parse(v)
            except InvalidRecord:
                # Gemeentecode's own message quotes the value; a misplaced column could be a name.
                raise InvalidRecord(
                    "is not a municipality code (GM and four digits, or the bare CBS number)",
                    field=label,
                    rule="GEMEENTE-FORMAT",
                ) from None
            if len(known) < 1000:
                known[v] = code
            return code

        return gemeente
    if kind == "email":

        def email(v: str) -> str:
            if not _EMAIL.fullmatch(v):
                raise InvalidRecord("is not an e-mail address", field=label, rule="EMAIL-FORMAT")
            return v

        return email
    if kind == "boolean":
        spellings = settings.booleans
        allowed = ", ".join(repr(s) for s in spellings)

        def boolean(v: str) -> bool:
            result = spellings.get(v.lower())
            if result is None:
                raise InvalidRecord(f"is not one of {allowed}", field=label, rule="BOOLEAN")
            return result

        return boolean
    if kind == "integer":
        low, high = bounds

        def integer(v: str) -> int:
            if not (v.isascii() and v.isdigit()):
                raise InvalidRecord("is not a whole number", field=label, rule="INTEGER")
            n = int(v)
            if not low <= n <= high:
                raise InvalidRecord(f"is not {low}-{high}", field=label, rule="INTEGER-RANGE")
            return n

        return integer
    # kind == "code"
    table = codes if codes is not None else {level.value: level for level in Level}
    allowed_codes = ", ".join(table)

    def code(v: str) -> Level:
        try:
            return table[v]
        except KeyError:
            raise InvalidRecord(
                f"is not one of the codes this mapping knows: {allowed_codes}",
                field=label,
                rule="CODE-UNKNOWN",
            ) from None

    return code


def _compile(
    sources: tuple[str, ...],
    join: str,
    label: str,
    parse: Callable[[str], Any] | None,
    required: bool,
    max_length: int,
) -> Convert:
    """The closure `to_student` calls: read, strip, check emptiness and length, convert.

    Specialised by shape (one source or several, text or parsed) because it runs about 30 times
    per record: each avoided inner call is a few percent of the whole import.
    """

    def empty(raw: str | None) -> None:
        if required:
            how = "is missing" if raw is None else "is empty"
            raise InvalidRecord(f"{how} (required)", field=label, rule="REQUIRED")

    def too_long() -> InvalidRecord:
        return InvalidRecord(
            f"is longer than {max_length} characters", field=label, rule="FIELD-TOO-LONG"
        )

    if len(sources) > 1:

        def convert_joined(f: dict[str, str]) -> Any:
            parts = [p.strip() for s in sources if (p := f.get(s)) is not None]
            if not parts:
                return empty(None)
            value = join.join([p for p in parts if p])
            if not value:
                return empty(value)
            if len(value) > max_length:
                raise too_long()
            return value if parse is None else parse(value)

        return convert_joined
    source = sources[0]
    if parse is None:

        def convert_text(f: dict[str, str]) -> Any:
            raw = f.get(source)
            if raw and (value := raw.strip()):
                if len(value) > max_length:
                    raise too_long()
                return value
            return empty(raw) if required else None  # no call for an optional field

        return convert_text

    def convert(f: dict[str, str]) -> Any:
        raw = f.get(source)
        if raw and (value := raw.strip()):
            if len(value) > max_length:
                raise too_long()
            return parse(value)
        return empty(raw) if required else None

    return convert


def _field_rule(
    y: _Yaml,
    node: yaml.Node,
    key: str,
    target: str,
    kind: str,
    settings: _Settings,
    required_default: bool,
    slot: str | None = None,
) -> FieldRule:
    spec = y.mapping(node, key, _FIELD_KEYS)
    if "source" not in spec:
        raise y.error(node, key, "has no source")
    sources = y.strings(spec["source"], f"{key}.source")
    if slot is not None:
        if not all("{n}" in s for s in sources):
            raise y.error(spec["source"], f"{key}.source", "a guardian source must contain {n}")
        sources = [s.replace("{n}", slot) for s in sources]
    if "type" in spec:
        stated = y.scalar(spec["type"], f"{key}.type")
        if stated not in KINDS:
            raise y.error(
                spec["type"], f"{key}.type", f"unknown type {stated!r} (known: {', '.join(KINDS)})"
            )
        if stated != kind:
            raise y.error(spec["type"], f"{key}.type", f"{target} is of type {kind}, not {stated}")
    codes: dict[str, Level] | None = None
    if "codes" in spec:
        if kind != "code":
            raise y.error(spec["codes"], f"{key}.codes", f"{target} is not a code field")
        codes = {}
        levels = {level.value: level for level in Level}
        for code, value_node in y.mapping(spec["codes"], f"{key}.codes").items():
            value = y.scalar(value_node, f"{key}.codes.{code}")
            if value not in levels:
                raise y.error(
                    value_node,
                    f"{key}.codes.{code}",
                    f"unknown level {value!r} (known: {', '.join(levels)})",
                )
            codes[code] = levels[value]
    low, high = _INTEGER_RANGE.get(target, (0, 10**9))
    for bound in ("min", "max"):
        if bound in spec:
            if kind != "integer":
                raise y.error(spec[bound], f"{key}.{bound}", f"{target} is not an integer field")
            if bound == "min":
                low = y.integer(spec[bound], f"{key}.min")
            else:
                high = y.integer(spec[bound], f"{key}.max")
    if low > high:
        raise y.error(node, key, f"min {low} is larger than max {high}")
    required = required_default
    if "required" in spec:
        required = y.flag(spec["required"], f"{key}.required")
        # The record-level rules need these; making them optional would let None into a Student.
        if required_default and not required:
            raise y.error(spec["required"], f"{key}.required", f"{target} cannot be optional")
        if target in ("bsn", "onderwijsnummer"):
            raise y.error(
                spec["required"],
                f"{key}.required",
                "bsn and onderwijsnummer are required as a pair (exactly one per student)",
            )
    max_length = settings.max_length
    if "max_length" in spec:
        max_length = y.integer(spec["max_length"], f"{key}.max_length")
        if max_length < 1:
            raise y.error(spec["max_length"], f"{key}.max_length", "must be at least 1")
    join = y.scalar(spec["join"], f"{key}.join") if "join" in spec else " "
    name = target if slot is None else f"guardians.{slot}.{target}"
    label = f"{name} ({'+'.join(sources)})"
    parse = _parser(kind, label, settings, codes, (low, high))
    convert = _compile(tuple(sources), join, label, parse, required, max_length)
    return FieldRule(target, tuple(sources), label, kind, required, convert)


# --- loading ----------------------------------------------------------------------------------


def mapping_names() -> list[str]:
    """The mappings that ship with the hub, by name."""
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))


@cache
def load_mapping(name: str) -> SisMapping:
    """A shipped mapping by name, compiled once per process."""
    if name not in mapping_names():
        raise ConfigurationError(
            "mapping", f"unknown SIS mapping {name!r} (known: {', '.join(mapping_names())})"
        )
    return load_mapping_file(MAPPINGS_DIR / f"{name}.yaml")


def _display(path: Path) -> str:
    resolved = path.resolve()
    if resolved.is_relative_to(_REPO_ROOT):
        return str(resolved.relative_to(_REPO_ROOT))
    return str(path)


def load_mapping_file(path: Path) -> SisMapping:
    """Read, check and compile one mapping file; MappingError names the file and the line."""
    file = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(file, f"cannot be read ({exc.strerror})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise MappingError(file, line, "yaml", f"not valid YAML ({exc})") from None
    if root is None:
        raise MappingError(file, 1, "mapping", "the file is empty")
    return _load(_Yaml(file), root)


def _load(y: _Yaml, root: yaml.Node) -> SisMapping:
    top = y.mapping(root, "", _TOP_KEYS)
    for required in ("name", "format", "fields"):
        if required not in top:
            raise y.error(root, required, "is missing")
    name = y.scalar(top["name"], "name")
    fmt = _format(y, root, top)
    date_format = y.scalar(top["dates"], "dates") if "dates" in top else "%Y-%m-%d"
    probe = date(2001, 2, 3)
    try:
        ok = datetime.strptime(probe.strftime(date_format), date_format).date() == probe
    except ValueError:
        ok = False
    if not ok:
        raise y.error(top.get("dates", root), "dates", "must name day, month and year (%d %m %Y)")
    booleans = {"true": True, "false": False, "": False}
    if "booleans" in top:
        spec = y.mapping(top["booleans"], "booleans", ("true", "false"))
        booleans = {}
        for key, meaning in (("true", True), ("false", False)):
            if key not in spec:
                raise y.error(top["booleans"], f"booleans.{key}", "is missing")
            for spelling in y.strings(spec[key], f"booleans.{key}"):
                booleans[spelling.lower()] = meaning
    max_length = y.integer(top["max_length"], "max_length") if "max_length" in top else 200
    if max_length < 1:
        raise y.error(top["max_length"], "max_length", "must be at least 1")
    settings = _Settings(date_format, booleans, max_length)

    fields = y.mapping(top["fields"], "fields")
    rules: dict[str, FieldRule] = {}
    for target, node in fields.items():
        key = f"fields.{target}"
        if target not in STUDENT_TARGETS:
            raise y.error(node, key, f"unknown target field (known: {', '.join(STUDENT_TARGETS)})")
        rules[target] = _field_rule(
            y, node, key, target, STUDENT_TARGETS[target], settings, target in REQUIRED_TARGETS
        )
    for target in REQUIRED_TARGETS:
        if target not in rules:
            raise y.error(top["fields"], f"fields.{target}", "is required and not mapped")
    if "bsn" not in rules and "onderwijsnummer" not in rules:
        raise y.error(top["fields"], "fields.bsn", "one of bsn and onderwijsnummer must be mapped")

    mapping = SisMapping(
        name=name,
        description=y.scalar(top["description"], "description") if "description" in top else "",
        file=y.file,
        format=fmt,
        date_format=date_format,
        rules=rules,
        guardian_slots=(),
    )
    if "guardians" in top:
        _guardians(y, top["guardians"], settings, mapping)
    return mapping


def _format(y: _Yaml, root: yaml.Node, top: dict[str, yaml.Node]) -> FormatSpec:
    kind = y.scalar(top["format"], "format")
    if kind not in _FORMAT_KEYS:
        raise y.error(top["format"], "format", "must be csv, json or xml")
    for other in _FORMAT_KEYS:
        if other != kind and other in top:
            raise y.error(top[other], other, f"is only for format {other}, this is {kind}")
    if kind == "json":
        spec = y.mapping(top["json"], "json", _FORMAT_KEYS["json"]) if "json" in top else {}
        records = y.scalar(spec["records"], "json.records") if "records" in spec else "leerlingen"
        return JsonFormat(records)
    if kind not in top:
        raise y.error(root, kind, f"format {kind} needs a {kind} block")
    spec = y.mapping(top[kind], kind, _FORMAT_KEYS[kind])
    if kind == "csv":
        for needed in ("encoding", "delimiter"):
            if needed not in spec:
                raise y.error(top[kind], f"csv.{needed}", "is missing")
        encoding = y.scalar(spec["encoding"], "csv.encoding")
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise y.error(
                spec["encoding"], "csv.encoding", f"unknown encoding {encoding!r}"
            ) from None
        delimiter = y.scalar(spec["delimiter"], "csv.delimiter")
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise y.error(spec["delimiter"], "csv.delimiter", "must be one character")
        return CsvFormat(encoding, delimiter)
    if "record" not in spec:
        raise y.error(top[kind], "xml.record", "is missing")
    repeated = y.sequence(spec["repeated"], "xml.repeated") if "repeated" in spec else []
    return XmlFormat(
        record=y.scalar(spec["record"], "xml.record"),
        namespace=y.scalar(spec["namespace"], "xml.namespace") if "namespace" in spec else "",
        repeated=frozenset(y.scalar(n, "xml.repeated") for n in repeated),
    )


def _guardians(y: _Yaml, node: yaml.Node, settings: _Settings, mapping: SisMapping) -> None:
    spec = y.mapping(node, "guardians", ("slots", "index", "fields"))
    if ("slots" in spec) == ("index" in spec):
        raise y.error(node, "guardians", "needs exactly one of slots and index")
    if "fields" not in spec:
        raise y.error(node, "guardians.fields", "is missing")
    fields = y.mapping(spec["fields"], "guardians.fields")
    for target, field_node in fields.items():
        if target not in GUARDIAN_TARGETS:
            raise y.error(
                field_node,
                f"guardians.fields.{target}",
                f"unknown guardian field (known: {', '.join(GUARDIAN_TARGETS)})",
            )
    for target in GUARDIAN_REQUIRED:
        if target not in fields:
            raise y.error(
                spec["fields"], f"guardians.fields.{target}", "is required and not mapped"
            )

    def compile_slot(slot: str) -> GuardianSlot:
        rules = {
            target: _field_rule(
                y,
                field_node,
                f"guardians.fields.{target}",
                target,
                GUARDIAN_TARGETS[target],
                settings,
                False,
                slot,
            )
            for target, field_node in fields.items()
        }
        sources = tuple(dict.fromkeys(s for r in rules.values() for s in r.sources))
        convert: dict[str, Convert] = dict.fromkeys(GUARDIAN_TARGETS, _unmapped)
        convert.update({t: r.convert for t, r in rules.items()})
        return GuardianSlot(sources, rules, convert)

    if "index" in spec:
        if y.scalar(spec["index"], "guardians.index") != "auto":
            raise y.error(spec["index"], "guardians.index", "must be auto")
        compile_slot("0")  # refuse a broken template now, not at the first record
        mapping.guardian_auto = lambda n: compile_slot(str(n))
        mapping.guardian_templates = tuple(
            dict.fromkeys(
                s for n in fields.values() for s in y.strings(y.mapping(n, "")["source"], "")
            )
        )
        return
    slots = [y.scalar(n, "guardians.slots") for n in y.sequence(spec["slots"], "guardians.slots")]
    mapping.guardian_slots = tuple(compile_slot(s) for s in slots)


# --- sis check --------------------------------------------------------------------------------

_EXPLANATIONS = {
    "REQUIRED": "a field the hub needs is empty or missing",
    "DATE-IMPOSSIBLE": "the date does not exist (like 31-02), or the birth date gives an age "
    f"outside {_MIN_AGE}-{_MAX_AGE} at the start of the school year",
    "BSN-FORMAT": "the BSN is not nine digits",
    "BSN-ZERO": "the BSN is all zeros",
    "BSN-ELFPROEF": "the BSN fails the elfproef (the check every real BSN passes): often a typo",
    "ONR-FORMAT": "the onderwijsnummer is not nine digits",
    "ONR-PREFIX": "the onderwijsnummer does not start with 10",
    "ONR-CHECKSUM": "the onderwijsnummer fails its check digit",
    "ID-EXACTLY-ONE": "a student needs exactly one of BSN and onderwijsnummer: both or neither "
    "is filled in",
    "CODE-UNKNOWN": "the code is not one the mapping knows",
    "FIELD-TOO-LONG": "a value is longer than the mapping allows",
    "INTEGER": "a number is not written as a whole number",
    "INTEGER-RANGE": "a number is outside its allowed range",
    "BOOLEAN": "a yes/no field holds something else",
    "COLUMNS": "the line has a different number of columns than the header (often a separator "
    "inside a value that is not in quotes)",
    "CSV": "the line is not valid CSV",
    "POSTCODE-FORMAT": "the postcode is not four digits and two letters",
    "POSTCODE-LETTERS": "the postcode uses letters that are never issued (SA, SD, SS)",
    "PHONE-FORMAT": "the phone number is not a phone number",
    "EMAIL-FORMAT": "the e-mail address is not an e-mail address",
    "GEMEENTE-FORMAT": "the municipality is not a CBS code",
    "GUARDIAN-INCOMPLETE": "a parent/guardian is only partly filled in",
    "GUARDIANS-TOO-MANY": f"more than {_MAX_GUARDIANS} parents/guardians",
    "ADDRESS-INCOMPLETE": "the address is only partly filled in",
    "ADDRESS-REQUIRED": "the address is missing and not marked secret",
    "ADDRESS-SECRET": "the address is marked secret but still in the export",
    "NAME-REQUIRED": "a name is missing",
    "STUDENT-KEY": "the student number is missing",
}
# Fields whose values `sis check` vets one by one, to say what is right as well as what is wrong.
_VETTED = {
    "bsn": ("BSNs", "pass the elfproef"),
    "onderwijsnummer": ("onderwijsnummers", "are valid"),
    "geboortedatum": ("birth dates", "are written as {date} and exist"),
    "postcode": ("postcodes", "are valid"),
    "gemeente": ("municipality codes", "are valid"),
    "level": ("leerweg codes", "are known to the mapping"),
    "leerjaar": ("leerjaren", "are in range"),
    "phone": ("phone numbers", "are valid"),
    "email": ("e-mail addresses", "look valid"),
}
_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class RuleCount:
    rule: str
    count: int
    explanation: str
    fields: tuple[str, ...]
    examples: tuple[str, ...]  # record refs, never values


@dataclass(frozen=True, slots=True)
class CheckReport:
    file: str
    mapping: str
    format: str
    notes: tuple[str, ...]  # how the file looks next to what the mapping expects
    columns_found: tuple[str, ...]
    columns_missing: tuple[tuple[str, bool], ...]  # (column, required)
    columns_ignored: tuple[str, ...]
    records: int
    importable: int
    refused: tuple[RuleCount, ...]
    right: tuple[str, ...]

    @property
    def ok(self) -> bool:
        # An export without a single record is not a clean export: it is the wrong file.
        return 0 < self.records == self.importable


def check_export(
    mapping: SisMapping, data: bytes, name: str, *, school_year: SchoolYear | None = None
) -> CheckReport:
    """What would happen to every record of `data` in an import, in counts and line numbers."""
    year = school_year or SchoolYear.containing(date.today())
    school = BrinVestiging.parse("00AA00")  # the school only labels a Student; any will do
    counts: Counter[str] = Counter()
    fields_by_rule: dict[str, set[str]] = {}
    examples: dict[str, list[str]] = {}
    reasons: dict[str, str] = {}
    seen: set[str] = set()
    vetted_ok: Counter[str] = Counter()
    vetted_bad: Counter[str] = Counter()
    total = importable = 0
    for record in records_from_bytes(data, name, mapping.format):
        total += 1
        seen.update(record.fields)
        if record.problem is None:
            _vet(mapping, record.fields, vetted_ok, vetted_bad)
        try:
            mapping.to_student(record, school=school, school_year=year)
            importable += 1
        except InvalidRecord as exc:
            counts[exc.rule] += 1
            fields_by_rule.setdefault(exc.rule, set()).add(exc.field)
            examples.setdefault(exc.rule, [])
            if len(examples[exc.rule]) < _EXAMPLES:
                examples[exc.rule].append(record.ref)
            reasons.setdefault(exc.rule, exc.reason)
    columns = _csv_header(data, mapping.format) if isinstance(mapping.format, CsvFormat) else []
    found = tuple(columns) if columns else tuple(sorted(seen))
    refused = tuple(
        RuleCount(
            rule,
            count,
            _explain(rule, mapping, reasons[rule]),
            tuple(sorted(fields_by_rule[rule])),
            tuple(examples[rule]),
        )
        for rule, count in counts.most_common()
    )
    missing, ignored = _columns(mapping, set(found))
    right = []
    for target, (noun, verb) in _VETTED.items():
        n = vetted_ok[target]
        if n and not vetted_bad[target]:
            text = verb.format(date=_human_date(mapping.date_format))
            right.append(f"all {n:,} {noun} {text}")
    return CheckReport(
        file=name,
        mapping=mapping.name,
        format=mapping.format_name,
        notes=tuple(_notes(mapping.format, data)),
        columns_found=found,
        columns_missing=missing,
        columns_ignored=ignored,
        records=total,
        importable=importable,
        refused=refused,
        right=tuple(right),
    )


def _vet(mapping: SisMapping, f: dict[str, str], ok: Counter[str], bad: Counter[str]) -> None:
    for target in _VETTED:
        rule = mapping.rules.get(target)
        if rule is None or not _present(f, rule.sources):
            continue
        try:
            rule.convert(f)
            ok[target] += 1
        except InvalidRecord:
            bad[target] += 1


def _explain(rule: str, mapping: SisMapping, reason: str) -> str:
    if rule == "DATE-FORMAT":
        return f"the date is not written as {_human_date(mapping.date_format)}"
    if rule in ("ENCODING", "XML-ENCODING"):
        fmt = mapping.format
        expected = _friendly_encoding(fmt.encoding) if isinstance(fmt, CsvFormat) else "UTF-8"
        return f"the record holds bytes that are not {expected} (was the file saved differently?)"
    # Our own reasons name rules and codes, never values: a fair fallback for any other rule.
    return _EXPLANATIONS.get(rule, reason)


def _columns(
    mapping: SisMapping, found: set[str]
) -> tuple[tuple[tuple[str, bool], ...], tuple[str, ...]]:
    expected: dict[str, bool] = {}
    for source, required in mapping.sources():
        expected[source] = expected.get(source, False) or required
    patterns: list[re.Pattern[str]] = []
    for slot in mapping.guardian_slots:
        expected.update({s: False for s in slot.sources if s not in expected})
    for template in mapping.guardian_templates:
        patterns.append(re.compile(re.escape(template).replace(re.escape("{n}"), "[0-9]+")))
    missing = tuple((c, req) for c, req in expected.items() if c not in found)
    ignored = tuple(
        sorted(c for c in found if c not in expected and not any(p.fullmatch(c) for p in patterns))
    )
    return missing, ignored


def _csv_header(data: bytes, spec: CsvFormat) -> list[str]:
    body = data[len(UTF8_BOM) :] if spec.codec == "utf-8" and data.startswith(UTF8_BOM) else data
    text = body[:65536].decode(spec.codec, "replace")
    for row in csv.reader(io.StringIO(text, newline=""), delimiter=spec.delimiter):
        if row:
            return row
    return []


_ENCODING_NAMES = {"utf-8": "UTF-8", "cp1252": "Windows-1252", "iso8859-1": "ISO-8859-1"}


def _friendly_encoding(encoding: str) -> str:
    """What an administrator's editor calls the encoding ("Windows-1252", not "cp1252")."""
    canonical = codecs.lookup(encoding).name  # "windows-1252" -> "cp1252"
    return _ENCODING_NAMES.get(canonical.removesuffix("-sig"), encoding)


_SEPARATORS = {";": "semicolon (;)", ",": "comma (,)", "\t": "tab", "|": "bar (|)"}


def _notes(spec: FormatSpec, data: bytes) -> list[str]:
    if not isinstance(spec, CsvFormat):
        return []
    notes = []
    encoding = _friendly_encoding(spec.encoding)
    has_bom = data.startswith(UTF8_BOM)
    utf8 = spec.codec == "utf-8"
    if utf8:
        notes.append(
            "The mapping expects UTF-8; the file "
            + ("starts with a UTF-8 byte-order mark." if has_bom else "has no byte-order mark.")
        )
    else:
        notes.append(f"The mapping expects {encoding}.")
        if has_bom:
            notes.append(
                "The file starts with a UTF-8 byte-order mark: it was probably saved as UTF-8, "
                f"not {encoding}."
            )
        elif any(b >= 0x80 for b in data):
            try:
                data.decode("utf-8")
                notes.append(
                    f"The file reads as UTF-8, not {encoding}: accented letters would come "
                    "out wrong."
                )
            except UnicodeDecodeError:
                pass
    first_line = data.split(b"\n", 1)[0]
    used = {sep: first_line.count(sep.encode()) for sep in _SEPARATORS}
    best = max(used, key=lambda s: used[s])
    expected = _SEPARATORS.get(spec.delimiter, repr(spec.delimiter))
    if used.get(spec.delimiter, 0) or not used[best]:
        notes.append(f"The mapping expects columns separated by a {expected}; the header is.")
    else:
        notes.append(
            f"The mapping expects columns separated by a {expected}, but the header line uses a "
            f"{_SEPARATORS[best]}."
        )
    return notes


def render_check(report: CheckReport) -> list[str]:
    """The report in plain language for a school administrator: counts and line numbers only."""
    lines = [f"File {report.file}, checked with mapping {report.mapping} ({report.format})."]
    lines += report.notes
    if report.format == "csv":
        lines.append(f"Columns found: {len(report.columns_found)}.")
    required = [c for c, req in report.columns_missing if req]
    optional = [c for c, req in report.columns_missing if not req]
    if required:
        lines.append(f"Required columns missing: {', '.join(required)}.")
    if optional:
        lines.append(f"Optional columns missing (left empty): {', '.join(optional)}.")
    if report.columns_ignored:
        # A header read with the wrong separator is one long "column": shorten, do not flood.
        names = [c if len(c) <= 40 else c[:37] + "..." for c in report.columns_ignored]
        lines.append(f"Columns ignored (not used by the mapping): {', '.join(names)}.")
    if not report.records:
        lines.append("No records found: is this the export file, and is the mapping right?")
    refused = report.records - report.importable
    lines.append(
        f"Records: {report.records:,}; would import: {report.importable:,}; "
        f"would be refused: {refused:,}."
    )
    for rc in report.refused:
        where = ", ".join(rc.examples)
        more = ", ..." if rc.count > len(rc.examples) else ""
        lines.append(
            f"  {rc.rule}: {rc.count:,} record{'s' if rc.count != 1 else ''}: {rc.explanation}"
            f" [{'; '.join(rc.fields)}] (e.g. {where}{more})"
        )
    for line in report.right:
        lines.append(f"OK: {line}.")
    return lines
