"""SIS format parsers and mappings (docs/sis.md): every export dialect of a synthetic region maps
back to exactly the students the region holds, and every broken record is refused with its
field, rule and line, never with the broken value."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from mappings.sis_formats import (
    UTF8_BOM,
    CsvFormat,
    JsonFormat,
    RawRecord,
    XmlFormat,
    records,
    records_from_bytes,
)
from mappings.sis_mapping import (
    MappingError,
    SisMapping,
    check_export,
    load_mapping,
    load_mapping_file,
    mapping_names,
    render_check,
)
from overstap.domain.calendar import SchoolYear
from overstap.domain.errors import ConfigurationError, InvalidRecord
from overstap.domain.identifiers import BrinVestiging
from overstap.domain.student import Student
from overstap.ports import ExportDocument
from overstap.region import generate_region, iter_students, load_region
from overstap.region.sis import MAGISTER, SOMTODAY
from overstap.region.sis_shapes import api_record, xml_export

SCHOOL = BrinVestiging.parse("12AB00")
YEAR = SchoolYear(2026)
NS = "urn:overstap:sis-export:1"


@dataclasses.dataclass(frozen=True)
class Region:
    dir: Path
    year: SchoolYear
    # per school location: (mapping name, export bytes, students, students.jsonl dicts)
    schools: dict[str, tuple[str, bytes, list[Student], list[dict[str, Any]]]]


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Region:
    directory = tmp_path_factory.mktemp("region")
    generate_region(directory, students=400, seed=3)
    loaded = load_region(directory)
    students: dict[str, list[Student]] = defaultdict(list)
    for record in iter_students(directory):
        students[str(record.student.school)].append(record.student)
    dicts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with (directory / "students.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            obj = json.loads(line)
            dicts[obj["school"]].append(obj)
    schools = {}
    for school in loaded.vo_schools:
        loc = str(school.location)
        data = (directory / "sis" / loc / "leerlingen.csv").read_bytes()
        schools[loc] = (school.sis, data, students[loc], dicts[loc])
    return Region(directory, loaded.school_year, schools)


def _map_all(mapping: SisMapping, data: bytes, name: str, region: Region, loc: str) -> list[Any]:
    out: list[Any] = []
    for record in records_from_bytes(data, name, mapping.format):
        try:
            out.append(
                mapping.to_student(record, school=BrinVestiging.parse(loc), school_year=region.year)
            )
        except InvalidRecord as exc:
            out.append(exc)
    return out


def _first_guardians(student: Student, n: int) -> Student:
    return dataclasses.replace(student, guardians=student.guardians[:n])


def _assert_same(got: list[Any], expected: list[Student], guardians: int | None) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert isinstance(g, Student), str(g)
        if guardians is not None:
            e = _first_guardians(e, guardians)
        for f in dataclasses.fields(Student):
            assert getattr(g, f.name) == getattr(e, f.name), f"{e.leerlingid}: {f.name}"


# --- the region's own exports, and the JSON and XML shapes ----------------------------------


def test_every_school_export_maps_to_its_students(region: Region) -> None:
    dialects = set()
    for loc, (sis, data, students, _) in region.schools.items():
        dialects.add(sis)
        got = _map_all(load_mapping(sis), data, "leerlingen.csv", region, loc)
        _assert_same(got, students, guardians=2)  # the CSV dialects carry two guardians
    assert dialects == {"magister", "somtoday"}


def test_json_pages_map_to_the_students(region: Region) -> None:
    mapping = load_mapping("rest-json")
    for loc, (_, _, students, dicts) in region.schools.items():
        page = {"leerlingen": [api_record(d, "2026-10-01T12:00:00Z") for d in dicts]}
        data = json.dumps(page, ensure_ascii=False).encode()
        got = _map_all(mapping, data, "page 1", region, loc)
        _assert_same(got, students, guardians=None)


def test_xml_exports_map_to_the_students(region: Region) -> None:
    mapping = load_mapping("xml-export")
    for loc, (_, _, students, dicts) in region.schools.items():
        got = _map_all(mapping, xml_export(dicts), "leerlingen.xml", region, loc)
        _assert_same(got, students, guardians=None)
    # A SOAP answer carries the same elements deeper down: records are found anywhere.
    body = xml_export(dicts).split(b"?>", 1)[1]
    soap = b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    soap += body + b"</s:Body></s:Envelope>"
    _assert_same(_map_all(mapping, soap, "page 1", region, loc), students, guardians=None)


def test_record_refs_and_raw_bytes(region: Region) -> None:
    sis, data, _, dicts = next(iter(region.schools.values()))
    mapping = load_mapping(sis)
    got = list(records_from_bytes(data, "leerlingen.csv", mapping.format))
    assert [r.ref for r in got[:2]] == ["leerlingen.csv line 2", "leerlingen.csv line 3"]
    # Header plus every record's bytes is the file: quarantine keeps exactly what was sent.
    body = data.removeprefix(UTF8_BOM)
    header_end = body.index(b"\r\n") + 2
    assert body[:header_end] + b"".join(r.raw for r in got) == body

    page = json.dumps({"leerlingen": [api_record(d) for d in dicts[:2]]}).encode()
    first = next(records_from_bytes(page, "page 2", JsonFormat("leerlingen")))
    assert first.ref == "page 2 record 1"
    assert json.loads(first.raw) == api_record(dicts[0])
    xml = next(
        records_from_bytes(xml_export(dicts[:1]), "f.xml", load_mapping("xml-export").format)
    )
    assert xml.ref == "f.xml record 1"
    assert etree.fromstring(xml.raw).tag == f"{{{NS}}}leerling"


def test_records_reads_an_export_document() -> None:
    data = b"a,b\r\n1,2\r\n"
    doc = ExportDocument(name="x.csv", open=lambda: io.BytesIO(data), version="v1")
    assert [r.fields for r in records(doc, CsvFormat("utf-8", ","))] == [{"a": "1", "b": "2"}]


def test_quoted_newlines_keep_line_numbers() -> None:
    data = b'a,b\r\n"x\r\ny",2\r\n\r\n3,4\r\n'
    got = list(records_from_bytes(data, "f.csv", CsvFormat("utf-8", ",")))
    assert [(r.ref, r.raw) for r in got] == [
        ("f.csv line 2", b'"x\r\ny",2\r\n'),
        ("f.csv line 5", b"3,4\r\n"),
    ]


# --- refusing records: field, rule, ref, and never the value ---------------------------------


def _magister_rows(region: Region) -> tuple[str, list[list[str]]]:
    loc, (sis, data, _, _) = next(
        (loc, v) for loc, v in region.schools.items() if v[0] == "magister"
    )
    assert sis == "magister"
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))
    return loc, rows


def _write_magister(rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    MAGISTER.open_writer(out).writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def _refusal(data: bytes, mapping: str, index: int) -> InvalidRecord:
    m = load_mapping(mapping)
    record = list(records_from_bytes(data, "leerlingen.csv", m.format))[index]
    with pytest.raises(InvalidRecord) as caught:
        m.to_student(record, school=SCHOOL, school_year=YEAR)
    return caught.value


def _col(rows: list[list[str]], name: str) -> int:
    return rows[0].index(name)


def _with_bsn(rows: list[list[str]]) -> int:
    return next(i for i in range(1, len(rows)) if rows[i][_col(rows, "BSN")])


def _with_one_guardian(rows: list[list[str]]) -> int:
    c = _col(rows, "Verzorger2 Achternaam")
    return next(i for i in range(1, len(rows)) if not rows[i][c])


MUTATIONS: list[tuple[str, str, str, str, str]] = [
    # (what, column, new value, field, rule)
    ("iso date", "Geb.datum", "2010-03-14", "geboortedatum (Geb.datum)", "DATE-FORMAT"),
    ("31 February", "Geb.datum", "31-02-2010", "geboortedatum (Geb.datum)", "DATE-IMPOSSIBLE"),
    ("a toddler", "Geb.datum", "14-03-2023", "geboortedatum (Geb.datum)", "DATE-IMPOSSIBLE"),
    ("empty name", "Achternaam", "", "achternaam (Achternaam)", "REQUIRED"),
    ("unknown leerweg", "Leerweg", "MAVO", "level (Leerweg)", "CODE-UNKNOWN"),
    ("long name", "Achternaam", "Q" * 201, "achternaam (Achternaam)", "FIELD-TOO-LONG"),
    ("long key", "Stamnr", "9" * 65, "leerlingid (Stamnr)", "FIELD-TOO-LONG"),
    ("leerjaar", "Leerjaar", "vier", "leerjaar (Leerjaar)", "INTEGER"),
    ("leerjaar 9", "Leerjaar", "9", "leerjaar (Leerjaar)", "INTEGER-RANGE"),
    ("boolean", "Examenjaar", "Misschien", "leaving_year (Examenjaar)", "BOOLEAN"),
    ("postcode", "Postcode", "ZZ99 Q", "postcode (Postcode)", "POSTCODE-FORMAT"),
    ("phone", "Telefoon", "bel maar", "phone (Telefoon)", "PHONE-FORMAT"),
    ("gemeente", "Gemeentecode", "Amsterdam", "gemeente (Gemeentecode)", "GEMEENTE-FORMAT"),
    ("half address", "Straat", "", "straat (Straat)", "ADDRESS-INCOMPLETE"),
]


@pytest.mark.parametrize(("what", "column", "value", "field", "rule"), MUTATIONS)
def test_a_broken_field_refuses_the_record(
    region: Region, what: str, column: str, value: str, field: str, rule: str
) -> None:
    _, rows = _magister_rows(region)
    i = next(j for j in range(1, len(rows)) if rows[j][_col(rows, "Straat")])  # has an address
    rows[i][_col(rows, column)] = value
    exc = _refusal(_write_magister(rows), "magister", i - 1)
    assert (exc.field, exc.rule, exc.record) == (field, rule, f"leerlingen.csv line {i + 1}")
    if value:
        assert value not in str(exc)


def test_bad_bsn_uses_the_domain_rule_and_hides_the_number(region: Region) -> None:
    _, rows = _magister_rows(region)
    i = _with_bsn(rows)
    c = _col(rows, "BSN")
    bsn = rows[i][c]
    rows[i][c] = bsn[:-1] + str((int(bsn[-1]) + 1) % 10)
    exc = _refusal(_write_magister(rows), "magister", i - 1)
    assert (exc.field, exc.rule) == ("bsn (BSN)", "BSN-ELFPROEF")
    assert rows[i][c] not in str(exc) and bsn not in str(exc)


@pytest.mark.parametrize("both", [True, False])
def test_exactly_one_personal_number(region: Region, both: bool) -> None:
    _, rows = _magister_rows(region)
    i = _with_bsn(rows)
    bsn = rows[i][_col(rows, "BSN")]
    rows[i][_col(rows, "Onderwijsnummer")] = "101234567" if both else ""
    if not both:
        rows[i][_col(rows, "BSN")] = ""
    exc = _refusal(_write_magister(rows), "magister", i - 1)
    assert exc.rule == "ID-EXACTLY-ONE"
    assert "bsn (BSN)" in exc.field and ("both" in str(exc)) == both
    assert bsn not in str(exc)


def test_half_a_guardian_is_refused_an_empty_one_is_none(region: Region) -> None:
    _, rows = _magister_rows(region)
    i = _with_one_guardian(rows)
    phone = "06-11112222"
    rows[i][_col(rows, "Verzorger2 Telefoon")] = phone
    exc = _refusal(_write_magister(rows), "magister", i - 1)
    assert (exc.field, exc.rule) == (
        "guardians.2.voornamen (Verzorger2 Voornaam)",
        "GUARDIAN-INCOMPLETE",
    )
    assert phone not in str(exc)


def test_a_foreign_byte_refuses_only_its_record(region: Region) -> None:
    loc, rows = _magister_rows(region)
    i = 3
    name = rows[i][_col(rows, "Achternaam")]
    data = _write_magister(rows)
    # Windows-1252 ü typed into a UTF-8 export, in the third student's surname.
    broken = data.replace(f";{name};".encode(), f";{name}\xfc;".encode("cp1252"), 1)
    assert broken != data
    got = list(records_from_bytes(broken, "leerlingen.csv", load_mapping("magister").format))
    bad = [r for r in got if r.problem is not None]
    assert len(bad) == 1 and bad[0].ref == f"leerlingen.csv line {i + 1}"
    assert bad[0].problem is not None
    assert (bad[0].problem.field, bad[0].problem.rule) == ("Achternaam", "ENCODING")
    assert b"\xfc" in bad[0].raw and name not in str(bad[0].problem)
    mapped = _map_all(load_mapping("magister"), broken, "leerlingen.csv", region, loc)
    assert sum(isinstance(s, Student) for s in mapped) == len(rows) - 2


def test_somtoday_undefined_windows_1252_byte_and_utf8_saved_file(region: Region) -> None:
    data = next(v[1] for v in region.schools.values() if v[0] == "somtoday")
    lines = data.split(b"\r\n")
    lines[2] = lines[2].replace(b",", b",\x81", 1)  # 0x81 has no character in Windows-1252
    m = load_mapping("somtoday")
    got = list(records_from_bytes(b"\r\n".join(lines), "l.csv", m.format))
    assert [(r.ref, r.problem.rule) for r in got if r.problem is not None] == [
        ("l.csv line 3", "ENCODING")
    ]
    # Saved as UTF-8, every byte still decodes as Windows-1252 (into the wrong letters): only
    # the check can warn about that.
    as_utf8 = data.decode("cp1252").encode("utf-8")
    text = "\n".join(render_check(check_export(m, as_utf8, "l.csv", school_year=region.year)))
    assert "The file reads as UTF-8, not Windows-1252" in text


def test_wrong_column_count(region: Region) -> None:
    _, rows = _magister_rows(region)
    rows[2].append("extra")
    exc = _refusal(_write_magister(rows), "magister", 1)
    assert (exc.field, exc.rule, exc.record) == ("record", "COLUMNS", "leerlingen.csv line 3")


def test_missing_column_refuses_every_record(region: Region) -> None:
    _, rows = _magister_rows(region)
    c = _col(rows, "Geb.datum")
    data = _write_magister([row[:c] + row[c + 1 :] for row in rows])
    exc = _refusal(data, "magister", 0)
    assert (exc.field, exc.rule) == ("geboortedatum (Geb.datum)", "REQUIRED")
    report = check_export(load_mapping("magister"), data, "leerlingen.csv", school_year=YEAR)
    assert report.importable == 0
    assert ("Geb.datum", True) in report.columns_missing
    assert any("Required columns missing: Geb.datum" in line for line in render_check(report))


def test_somtoday_bsn_without_leading_zero_and_phone_forms() -> None:
    rows = [list(SOMTODAY.columns)]
    row = dict.fromkeys(SOMTODAY.columns, "")
    row.update(
        leerlingnummer="12345",
        voornamen="Sem",
        achternaam="Vries",
        geboortedatum="2010-05-14",
        bsn="11222335",  # 011222335 written as a number
        straatnaam="Lindelaan",
        huisnummer="12",
        huisnummerToevoeging="A",
        postcode="7511AB",
        woonplaats="Enschede",
        gemeentecode="GM0153",
        adresGeheim="false",
        telefoonnummer="+31612345678",
        leerweg="vmbo-k",
        leerjaar="4",
        examenkandidaat="true",
    )
    rows.append([row[c] for c in SOMTODAY.columns])
    out = io.StringIO(newline="")
    SOMTODAY.open_writer(out).writerows(rows)
    m = load_mapping("somtoday")
    (record,) = records_from_bytes(out.getvalue().encode("cp1252"), "l.csv", m.format)
    student = m.to_student(record, school=SCHOOL, school_year=YEAR)
    assert student.identifier.value == "011222335"
    assert student.contact.phone == "0612345678"
    assert student.address is not None and student.address.huisnummer == "12A"
    assert student.guardians == ()


def test_whole_documents_that_cannot_be_parsed() -> None:
    bad_json = b'{"leerlingen": [{"bsn": "123"'
    (one,) = records_from_bytes(bad_json, "page 3", JsonFormat("leerlingen"))
    assert one.raw == bad_json and one.problem is not None
    assert one.problem.rule == "JSON-SYNTAX" and "123" not in str(one.problem)
    bad_xml = b"<leerlingen><leerling><bsn>123</leerling>"
    (two,) = records_from_bytes(bad_xml, "f.xml", XmlFormat("leerling", "", frozenset()))
    assert two.raw == bad_xml and two.problem is not None and two.problem.rule == "XML-SYNTAX"
    shapes = list(
        records_from_bytes(b'{"leerlingen": [1, {"a": 2}]}', "p", JsonFormat("leerlingen"))
    )
    assert shapes[0].problem is not None and shapes[0].problem.rule == "JSON-SHAPE"
    assert shapes[1].fields == {"a": "2"}
    twice = b"<r><leerling><bsn>1</bsn><bsn>2</bsn></leerling></r>"
    (dup,) = records_from_bytes(twice, "f.xml", XmlFormat("leerling", "", frozenset()))
    assert dup.problem is not None and (dup.problem.field, dup.problem.rule) == ("bsn", "XML-SHAPE")


@pytest.mark.parametrize(
    ("page", "rule"),
    [
        (b'{"leerlingen": [{"bsn": "\\ud800"}]}', "ENCODING"),  # an escaped lone surrogate
        (b'{"leerlingen": [{"bsn": "1\xff"}]}', "ENCODING"),  # a byte that is not UTF-8
        (b'{"leerlingen": [' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"]}", "JSON-SHAPE"),
        (b'{"leerlingen": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "JSON-SYNTAX"),
    ],
)
def test_hostile_json_is_a_record_problem(page: bytes, rule: str) -> None:
    got = list(records_from_bytes(page, "page 1", JsonFormat("leerlingen")))
    assert len(got) == 1 and got[0].problem is not None and got[0].problem.rule == rule
    assert got[0].raw  # quarantine gets bytes either way


def test_json_guardians_are_counted_and_bounded(region: Region) -> None:
    dicts = next(iter(region.schools.values()))[3]
    rec = api_record(dicts[0])
    guardian = {"voornaam": "A", "achternaam": "B", "relatie": "ouder"}
    m = load_mapping("rest-json")
    for count, ok in ((10, True), (11, False)):
        rec["verzorgers"] = [guardian] * count
        (record,) = records_from_bytes(json.dumps([rec]).encode(), "page 1", m.format)
        if ok:
            student = m.to_student(record, school=SCHOOL, school_year=region.year)
            assert len(student.guardians) == count
        else:
            with pytest.raises(InvalidRecord, match="GUARDIANS-TOO-MANY"):
                m.to_student(record, school=SCHOOL, school_year=region.year)


def test_xml_records_in_the_wrong_namespace_are_not_silently_dropped() -> None:
    spec = load_mapping("xml-export").format
    assert list(records_from_bytes(b"<leerlingen/>", "f.xml", spec)) == []  # truly empty
    data = b'<leerlingen xmlns="urn:other"><leerling/></leerlingen>'
    (one,) = records_from_bytes(data, "f.xml", spec)
    assert one.problem is not None and one.problem.rule == "XML-NAMESPACE" and one.raw == data


def test_mapping_a_record_with_a_problem_raises_it() -> None:
    problem = InvalidRecord("x", field="record", rule="COLUMNS", record="f line 2")
    with pytest.raises(InvalidRecord) as caught:
        load_mapping("magister").to_student(
            RawRecord("f line 2", b"", {}, problem), school=SCHOOL, school_year=YEAR
        )
    assert caught.value is problem


# --- sis check ------------------------------------------------------------------------------


def test_check_report_counts_explains_and_never_shows_values(region: Region) -> None:
    _, rows = _magister_rows(region)
    dates = []
    for i in (2, 5, 7):
        dates.append(rows[i][_col(rows, "Geb.datum")])
        rows[i][_col(rows, "Geb.datum")] = dates[-1].replace("-", "/")
    rows[0].append("Mentor")
    for row in rows[1:]:
        row.append("")
    report = check_export(
        load_mapping("magister"), _write_magister(rows), "l.csv", school_year=YEAR
    )
    assert (report.records, report.importable) == (len(rows) - 1, len(rows) - 4)
    assert not report.ok
    assert report.columns_ignored == ("Mentor",)
    (date_rule,) = [r for r in report.refused if r.rule == "DATE-FORMAT"]
    assert date_rule.count == 3
    assert date_rule.examples == ("l.csv line 3", "l.csv line 6", "l.csv line 8")
    assert date_rule.explanation == "the date is not written as dd-mm-yyyy"
    text = "\n".join(render_check(report))
    assert "starts with a UTF-8 byte-order mark" in text
    assert "BSNs pass the elfproef" in text
    assert not any(d in text for d in dates)


def test_check_an_empty_export_is_not_ok() -> None:
    report = check_export(load_mapping("magister"), b"", "leeg.csv", school_year=YEAR)
    assert (report.records, report.ok) == (0, False)
    assert any("No records found" in line for line in render_check(report))


def test_check_a_json_page(region: Region) -> None:
    dicts = next(iter(region.schools.values()))[3]
    page = {"leerlingen": [api_record(d, "2026-10-01T12:00:00Z") for d in dicts]}
    data = json.dumps(page).encode()
    report = check_export(load_mapping("rest-json"), data, "page 1", school_year=region.year)
    assert report.ok and report.records == len(dicts)
    assert report.columns_ignored == ("gewijzigd",)  # guardians of any index are not "ignored"
    assert report.notes == ()


def test_check_notices_the_wrong_separator_and_encoding(region: Region) -> None:
    _, data = next((v[1], v[1]) for v in region.schools.values() if v[0] == "magister")
    report = check_export(load_mapping("somtoday"), data, "l.csv", school_year=YEAR)
    text = "\n".join(render_check(report))
    assert "header line uses a semicolon" in text
    assert "probably saved as UTF-8" in text
    assert report.importable == 0


# --- loading mappings -----------------------------------------------------------------------


def test_shipped_mappings_load() -> None:
    assert mapping_names() == ["magister", "rest-json", "somtoday", "xml-export"]
    assert load_mapping("magister") is load_mapping("magister")  # compiled once
    with pytest.raises(ConfigurationError, match="unknown SIS mapping"):
        load_mapping("nope")


BROKEN = [
    # (replace, with, the line the error must name (the line of the text searched), message)
    ("type: date", "type: datum", "type: datum", "fields.geboortedatum.type: unknown type 'datum'"),
    ("{source: Roepnaam}", "{source: Roepnaam, colour: red}", "colour", "fields.roepnaam.colour"),
    ("  straat: {source: Straat}", "  straatje: {source: Straat}", "straatje", "unknown target"),
    ("type: integer,", "type: integer, codes: {a: havo},", "codes: {a", "not a code field"),
    ("  geboortedatum: {source: Geb.datum, type: date}\n", "", "\nfields:", "fields.geboortedatum"),
    ("format: csv", "format: csv\njson: {records: x}", "json:", "json: is only for format json"),
    ("encoding: utf-8-sig", "encoding: utf-9", "encoding: utf-9", "unknown encoding"),
    ('delimiter: ";"', 'delimiter: ";;"', "delimiter", "must be one character"),
    ("VMBO BB: vmbo_bb", "VMBO BB: vmbo_xx", "vmbo_xx", "unknown level 'vmbo_xx'"),
    ("slots: [1, 2]", "slots: [1, 2]\n  index: auto", "guardians:", "exactly one of slots"),
    ("{source: Stamnr,", "{source: Stamnr, required: false,", "required: false", "cannot be"),
    ("min: 1, max: 6", "min: 7, max: 6", "  leerjaar:", "min 7 is larger than max 6"),
]


@pytest.mark.parametrize(("old", "new", "at", "message"), BROKEN)
def test_broken_mappings_name_file_and_line(
    tmp_path: Path, old: str, new: str, at: str, message: str
) -> None:
    text = Path("mappings/sis/magister.yaml").read_text(encoding="utf-8")
    assert old in text
    broken = text.replace(old, new, 1)
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    line = broken[: broken.index(at)].count("\n") + 1 + at.startswith("\n")
    with pytest.raises(MappingError) as caught:
        load_mapping_file(path)
    assert str(caught.value).startswith(f"{path} line {line}: ")
    assert message in str(caught.value)


def test_shipped_mapping_errors_name_the_repository_path() -> None:
    path = Path("mappings/sis/magister.yaml").resolve()
    text = path.read_text(encoding="utf-8")
    assert load_mapping_file(path).file == "mappings/sis/magister.yaml"
    assert "type: date" in text


# --- robustness: any damage to an export is an InvalidRecord, and no record gets lost -------


def _csv_count(data: bytes, spec: CsvFormat) -> int:
    """Records as the csv module counts them: non-empty rows after the header."""
    body = data.removeprefix(UTF8_BOM) if spec.codec == "utf-8" else data
    text = body.decode(spec.codec, "surrogateescape")
    rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=spec.delimiter) if r]
    return max(len(rows) - 1, 0)


@pytest.fixture(scope="module")
def samples(region: Region) -> dict[str, bytes]:
    """The header and five records of an export in each dialect."""
    out: dict[str, bytes] = {}
    for sis, data, _, _ in region.schools.values():
        out.setdefault(sis, b"".join(data.splitlines(keepends=True)[:6]))
    return out


_MUTATION = st.tuples(
    st.sampled_from(["delete", "duplicate", "inject", "swap"]),
    st.integers(min_value=0, max_value=10**6),
    # Random bytes, and the ones that matter most to a CSV parser.
    st.one_of(
        st.binary(min_size=1, max_size=3),
        st.sampled_from([b'"', b";", b"\r\n", b"\n", b"\r", b'"\r\n"', b"\xff", b"\xe9"]),
    ),
)


def _mutate(data: bytes, ops: list[tuple[str, int, bytes]], delimiter: bytes) -> bytes:
    for op, at, junk in ops:
        if not data:
            break
        pos = at % len(data)
        if op == "delete":
            data = data[:pos] + data[pos + 1 :]
        elif op == "duplicate":
            data = data[: pos + 1] + data[pos:]
        elif op == "inject":
            data = data[:pos] + junk + data[pos:]
        else:  # swap two columns of one line
            lines = data.split(b"\r\n")
            n = pos % len(lines)
            cells = lines[n].split(delimiter)
            if len(cells) > 2:
                a, b = pos % len(cells), (pos // 7) % len(cells)
                cells[a], cells[b] = cells[b], cells[a]
                lines[n] = delimiter.join(cells)
            data = b"\r\n".join(lines)
    return data


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dialect=st.sampled_from(["magister", "somtoday"]),
    ops=st.lists(_MUTATION, min_size=1, max_size=6),
)
def test_mutated_exports_only_ever_raise_invalid_record(
    samples: dict[str, bytes], dialect: str, ops: list[tuple[str, int, bytes]]
) -> None:
    mapping = load_mapping(dialect)
    spec = mapping.format
    assert isinstance(spec, CsvFormat)
    data = _mutate(samples[dialect], ops, spec.delimiter.encode())
    got = list(records_from_bytes(data, "leerlingen.csv", mapping.format))
    whole = len(got) == 1 and got[0].ref == "leerlingen.csv"
    if whole:
        assert got[0].problem is not None and got[0].raw == data
    else:
        assert len(got) == _csv_count(data, spec)
    refs = []
    for record in got:
        try:
            mapping.to_student(record, school=SCHOOL, school_year=YEAR)
        except InvalidRecord as exc:
            refs.append((exc.record, record.ref))
    assert all(named == ref for named, ref in refs)


@pytest.fixture(scope="module")
def documents(region: Region) -> dict[str, bytes]:
    """A page of three students in the JSON shape and a file export of them in the XML shape."""
    dicts = next(iter(region.schools.values()))[3][:3]
    page = json.dumps({"leerlingen": [api_record(d) for d in dicts]}, ensure_ascii=False)
    return {"rest-json": page.encode(), "xml-export": xml_export(dicts)}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(["rest-json", "xml-export"]),
    ops=st.lists(_MUTATION, min_size=1, max_size=6),
)
def test_mutated_json_and_xml_only_ever_raise_invalid_record(
    documents: dict[str, bytes], name: str, ops: list[tuple[str, int, bytes]]
) -> None:
    data = _mutate(documents[name], ops, b",")
    mapping = load_mapping(name)
    got = list(records_from_bytes(data, "page 1", mapping.format))
    if name == "rest-json":
        try:
            page = json.loads(data.decode("utf-8", "surrogateescape"))
            expected = len(page["leerlingen"])
        except (ValueError, KeyError, TypeError):
            expected = 1  # unreadable, or no list of records: the page is one refused record
        assert len(got) == expected or (len(got) == 1 and got[0].problem is not None)
    for record in got:
        with contextlib.suppress(InvalidRecord):  # refused with a reason: all that is asked
            mapping.to_student(record, school=SCHOOL, school_year=YEAR)


@pytest.mark.parametrize(
    ("raw", "national"),
    [
        ("06-12345678", "0612345678"),
        ("+31612345678", "0612345678"),
        ("0031 6 1234 5678", "0612345678"),
    ],
)
def test_phone_numbers_become_national_digits(raw: str, national: str) -> None:
    data = json.dumps(
        {
            "leerlingen": [
                {
                    "leerlingnummer": "1",
                    "naam": {"voornamen": "A", "achternaam": "B"},
                    "geboortedatum": "2010-01-01",
                    "bsn": "111222333",
                    "adresgeheim": True,
                    "gemeentecode": "GM0153",
                    "contact": {"telefoon": raw},
                    "opleiding": {"leerweg": "havo", "leerjaar": 5, "examenjaar": True},
                }
            ]
        }
    ).encode()
    m = load_mapping("rest-json")
    (record,) = records_from_bytes(data, "page 1", m.format)
    assert m.to_student(record, school=SCHOOL, school_year=YEAR).contact.phone == national
