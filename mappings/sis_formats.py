"""Format parsers: split one SIS export document into `RawRecord`s (docs/sis.md, "Flat fields").

A parser knows the syntax of CSV, JSON or XML and nothing of students: it yields, per record,
where it was (`ref`, never personal data), its exact bytes (what quarantine keeps) and a flat
`dict[str, str]` of its fields. A record that cannot be read at all (bytes that are not valid in
the export's encoding, a wrong number of CSV columns, a JSON or XML record of the wrong shape) is
still yielded, with `problem` set, so it can be quarantined with its bytes; a document that cannot
be parsed at all yields exactly one record holding the whole document. Nothing disappears
silently.

Why CSV is decoded per record: an export in UTF-8 with one Windows-1252 byte typed into one
student's street name should refuse that one student, not the school. The whole document is
decoded with `surrogateescape`, which keeps every undecodable byte as a lone surrogate: a record
whose text holds one has an ENCODING problem, and encoding a record's text back with the same
handler gives exactly its original bytes.

Records are yielded one by one (a national pull streams 150,000 of them); only the document's
own bytes and text are held in memory.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.domain.errors import InvalidRecord
from overstap.ports import ExportDocument
from overstap.xml.safe import parse_untrusted

UTF8_BOM = b"\xef\xbb\xbf"
_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf-8-sig", "utf_8", "utf_8_sig"})
# Lone surrogates: U+DC80..U+DCFF is what surrogateescape makes of undecodable bytes; the rest
# can only come from a JSON \ud800-style escape, and no text store accepts them either.
_UNDECODABLE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record of an export as read: `problem` is set when it could not be read at all."""

    ref: str
    raw: bytes
    fields: dict[str, str]
    problem: InvalidRecord | None = None


@dataclass(frozen=True, slots=True)
class CsvFormat:
    encoding: str  # a Python codec name; "utf-8-sig" means UTF-8 that may start with a BOM
    delimiter: str

    @property
    def codec(self) -> str:
        """The codec records are decoded and re-encoded with (the BOM is handled separately)."""
        return "utf-8" if self.encoding.lower() in _UTF8_NAMES else self.encoding


@dataclass(frozen=True, slots=True)
class JsonFormat:
    records: str  # key of the record list in a page object; a bare list is accepted too


@dataclass(frozen=True, slots=True)
class XmlFormat:
    record: str  # local name of the record element
    namespace: str  # "" for no namespace
    repeated: frozenset[str]  # dotted element paths (below the record) that get an index


FormatSpec = CsvFormat | JsonFormat | XmlFormat


def records(document: ExportDocument, spec: FormatSpec) -> Iterator[RawRecord]:
    """The records of one export document, in document order."""
    with document.open() as stream:
        data = stream.read()
    return records_from_bytes(data, document.name, spec)


def records_from_bytes(data: bytes, name: str, spec: FormatSpec) -> Iterator[RawRecord]:
    if isinstance(spec, CsvFormat):
        return _csv_records(data, name, spec)
    if isinstance(spec, JsonFormat):
        return _json_records(data, name, spec)
    return _xml_records(data, name, spec)


def _whole_document(data: bytes, name: str, why: str, rule: str) -> RawRecord:
    return RawRecord(
        ref=name,
        raw=data,
        fields={},
        problem=InvalidRecord(why, field="document", rule=rule, record=name),
    )


# --- CSV ----------------------------------------------------------------------------------------


def _csv_records(data: bytes, name: str, spec: CsvFormat) -> Iterator[RawRecord]:
    codec = spec.codec
    body = data
    if codec == "utf-8" and data.startswith(UTF8_BOM):
        body = data[len(UTF8_BOM) :]
    text = body.decode(codec, "surrogateescape")
    # newline="": lines end at \n, \r or \r\n and keep their ending, as csv requires. The csv
    # readers below take lines from this one iterator, never more than their record needs.
    source = io.StringIO(text, newline="")
    delimiter = spec.delimiter
    reader = csv.reader(source, delimiter=delimiter)
    header: list[str] = []
    try:
        while not header:  # blank lines before the header are no header
            header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield _whole_document(data, name, f"the header line is not valid CSV ({exc})", "CSV")
        return
    if _UNDECODABLE.search("".join(header)):
        yield _whole_document(
            data, name, f"the header line is not valid {spec.encoding}", "ENCODING"
        )
        return
    if len(set(header)) != len(header):
        yield _whole_document(
            data, name, "the header names a column more than once", "COLUMNS-DUPLICATE"
        )
        return
    width = len(header)
    line_count = reader.line_num
    for first in source:
        start = line_count + 1
        problem: InvalidRecord | None = None
        if '"' not in first:
            # Without a quote a line is one record and split() reads it as csv does; the csv
            # module costs more than half the parse time, so it only sees quoted records.
            line_count += 1
            record_text = first
            content = first.rstrip("\r\n")
            row = content.split(delimiter) if content else []
        else:
            # A quoted field may span lines: `taken` collects exactly this record's lines.
            taken = [first]
            record_reader = csv.reader(_taking(first, source, taken), delimiter=delimiter)
            try:
                row = next(record_reader)
            except csv.Error as exc:
                # The csv module's messages describe syntax only ("unexpected end of data").
                problem = InvalidRecord(f"is not valid CSV ({exc})", field="record", rule="CSV")
                row = []
            line_count += record_reader.line_num
            record_text = "".join(taken)
        if not row and problem is None:
            continue  # a blank line holds no record
        ref = f"{name} line {start}"
        try:
            # A strict encode fails exactly on the surrogates that stand for undecodable bytes,
            # and is cheaper than searching for them first.
            raw = record_text.encode(codec)
        except UnicodeEncodeError:
            raw = record_text.encode(codec, "surrogateescape")
            if problem is None:
                problem = _encoding_problem(row, header, spec.encoding)
        if problem is None:
            if len(row) == width:
                # strict=False: the lengths were just compared, checking again costs time
                yield RawRecord(ref, raw, dict(zip(header, row, strict=False)))
                continue
            problem = InvalidRecord(
                f"has {len(row)} columns, the header has {width}", field="record", rule="COLUMNS"
            )
        yield RawRecord(ref, raw, {}, problem.for_record(ref))


def _taking(first: str, source: Iterator[str], taken: list[str]) -> Iterator[str]:
    """`first`, then the lines of `source` as they are asked for, each also added to `taken`."""
    yield first
    for line in source:
        taken.append(line)
        yield line


def _encoding_problem(row: list[str], header: list[str], encoding: str) -> InvalidRecord:
    column = "record"
    for i, cell in enumerate(row):
        if _UNDECODABLE.search(cell):
            column = header[i] if i < len(header) else f"column {i + 1}"
            break
    return InvalidRecord(
        f"holds bytes that are not valid {encoding}", field=column, rule="ENCODING"
    )


# --- JSON ---------------------------------------------------------------------------------------


def _json_records(data: bytes, name: str, spec: JsonFormat) -> Iterator[RawRecord]:
    body = data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data
    try:
        # surrogateescape: an undecodable byte spoils only the string (and record) it is in.
        document = json.loads(body.decode("utf-8", "surrogateescape"))
    except json.JSONDecodeError as exc:
        # exc.msg describes the syntax; the document text is never echoed.
        why = f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        yield _whole_document(data, name, why, "JSON-SYNTAX")
        return
    except RecursionError:
        yield _whole_document(data, name, "nests too deeply to be read", "JSON-SYNTAX")
        return
    items = document.get(spec.records) if isinstance(document, dict) else document
    if not isinstance(items, list):
        why = f"holds no list of records (expected a list or an object with {spec.records!r})"
        yield _whole_document(data, name, why, "JSON-SHAPE")
        return
    for number, item in enumerate(items, start=1):
        ref = f"{name} record {number}"
        fields: dict[str, str] = {}
        try:
            raw = _compact(item)
            if not isinstance(item, dict):
                raise InvalidRecord("is not a JSON object", field="record", rule="JSON-SHAPE")
            _flatten_json(item, "", fields, 0)
        except RecursionError:
            # Too deep even to re-serialise: keep the whole page, so nothing is lost.
            why = "nests too deeply to be read"
            problem = InvalidRecord(why, field="record", rule="JSON-SHAPE", record=ref)
            yield RawRecord(ref, data, {}, problem)
            continue
        except InvalidRecord as exc:
            yield RawRecord(ref, raw, {}, exc.for_record(ref))
            continue
        yield RawRecord(ref, raw, fields)


def _compact(item: Any) -> bytes:
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A \ud800-style escape in the JSON text: a lone surrogate no byte sequence stands for.
        return text.encode("utf-8", "surrogatepass")


_MAX_JSON_DEPTH = 16  # the reference shape nests 3 deep; deeper is not a student record


def _flatten_json(value: Any, path: str, out: dict[str, str], depth: int) -> None:
    if depth > _MAX_JSON_DEPTH:
        raise InvalidRecord(
            f"nests deeper than {_MAX_JSON_DEPTH} levels", field="record", rule="JSON-SHAPE"
        )
    if isinstance(value, dict):
        for key, child in value.items():
            _flatten_json(child, f"{path}.{key}" if path else str(key), out, depth + 1)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _flatten_json(child, f"{path}.{i}" if path else str(i), out, depth + 1)
    elif value is None:
        return  # null and absent are the same: the key is missing
    else:
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = value if isinstance(value, str) else json.dumps(value)
        if _UNDECODABLE.search(path):
            raise InvalidRecord("a field name is not UTF-8", field="record", rule="ENCODING")
        if _UNDECODABLE.search(text):
            raise InvalidRecord("holds bytes that are not UTF-8", field=path, rule="ENCODING")
        out[path] = text


# --- XML ----------------------------------------------------------------------------------------


def _xml_records(data: bytes, name: str, spec: XmlFormat) -> Iterator[RawRecord]:
    try:
        root = parse_untrusted(data, source=name)
    except InvalidRecord as exc:
        yield RawRecord(name, data, {}, exc.for_record(name))
        return
    tag = f"{{{spec.namespace}}}{spec.record}" if spec.namespace else spec.record
    number = 0
    for number, element in enumerate(root.iter(tag), start=1):
        ref = f"{name} record {number}"
        raw = etree.tostring(element)
        fields: dict[str, str] = {}
        try:
            _flatten_xml(element, "", spec.repeated, fields)
        except InvalidRecord as exc:
            yield RawRecord(ref, raw, {}, exc.for_record(ref))
            continue
        yield RawRecord(ref, raw, fields)
    if number == 0 and any(
        isinstance(e.tag, str) and etree.QName(e).localname == spec.record for e in root.iter()
    ):
        # Records in another namespace (or none): an empty import would hide a whole school.
        why = f"has {spec.record} elements, but not in namespace {spec.namespace or '(none)'}"
        yield _whole_document(data, name, why, "XML-NAMESPACE")


def _flatten_xml(
    element: etree._Element, path: str, repeated: frozenset[str], out: dict[str, str]
) -> None:
    seen: dict[str, int] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue  # the safe parser drops comments and PIs; entities never get here
        local = etree.QName(child).localname
        at = f"{path}.{local}" if path else local
        count = seen.get(local, 0)
        seen[local] = count + 1
        if at in repeated:
            at = f"{at}.{count}"
        elif count:
            # Two values for one field: which one is meant is a guess we do not make.
            raise InvalidRecord("occurs more than once", field=at, rule="XML-SHAPE")
        if len(child):
            _flatten_xml(child, at, repeated, out)
        else:
            out[at] = child.text or ""
