"""Our XML schemas (xsd/): compiled once per process, validated with every violation reported.

The message types and their roots:

| name       | root element                                       | schema file         |
|------------|----------------------------------------------------|---------------------|
| `dossier`  | `{urn:overstap:dossier:1}dossier`                  | `dossier.xsd`       |
| `status`   | `{urn:overstap:status:1}statusmeldingen`           | `status.xsd`        |
| `signal`   | `{urn:overstap:signal:1}signaalbestand`            | `signal.xsd`        |
| `receipt`  | `{urn:overstap:receipt:1}ontvangstbevestiging`     | `receipt.xsd`       |
| `manifest` | `{urn:overstap:manifest:1}manifest`                | `manifest.xsd`      |

Loading. The schema files are read with a parser that never touches the network
(`no_network=True`, no entity expansion) and a resolver that refuses every include or import
outside the schema directory, so a schema can only pull in our own `overstap-types.xsd`. The
directory is `xsd/` at the repository root (the package is installed editable), or
`$OVERSTAP_XSD_DIR`. A schema that does not compile raises `ConfigurationError`: that is a
deployment fault, not a fault of a document.

Threads. Each schema is compiled once per process (per directory) under a lock, so
`schema_for("dossier") is schema_for("dossier")`. A compiled `etree.XMLSchema` is read-only
and libxml2 gives every validation its own context, but lxml keeps ONE `error_log` per schema
object, which a concurrent validation would clear and fill. `validate()` therefore holds a
per-schema lock while it validates and copies the log; validations against different schemas
still run in parallel (lxml releases the GIL while libxml2 validates). Callers that use the
`XMLSchema` object from `schema_for()` directly from several threads must hold their own lock.

Privacy. libxml2 messages quote the offending value ("The value '12345678X' is not accepted
..."); a value may be a BSN, so `SchemaViolation.message` replaces quoted values with
`[redacted]`. The element path and line say where to look.

Profile rules that XSD 1.0 cannot express (elfproef, inzage and toestemming, secret-address
placeholders, attachment limits, ...) are listed in xsd/README.md and are checked elsewhere.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.errors import ConfigurationError, InvalidRecord

XSD_DIR_ENV = "OVERSTAP_XSD_DIR"
"""Environment variable that points at another schema directory (tests, deployments)."""


@dataclass(frozen=True, slots=True)
class DocumentType:
    """One message type: its schema name, schema file and root element."""

    name: str
    file: str
    namespace: str
    root: str

    @property
    def qname(self) -> str:
        return f"{{{self.namespace}}}{self.root}"


DOCUMENT_TYPES: Mapping[str, DocumentType] = {
    d.name: d
    for d in (
        DocumentType("dossier", "dossier.xsd", "urn:overstap:dossier:1", "dossier"),
        DocumentType("status", "status.xsd", "urn:overstap:status:1", "statusmeldingen"),
        DocumentType("signal", "signal.xsd", "urn:overstap:signal:1", "signaalbestand"),
        DocumentType("receipt", "receipt.xsd", "urn:overstap:receipt:1", "ontvangstbevestiging"),
        DocumentType("manifest", "manifest.xsd", "urn:overstap:manifest:1", "manifest"),
    )
}
_BY_QNAME: Mapping[str, DocumentType] = {d.qname: d for d in DOCUMENT_TYPES.values()}

TYPES_NAMESPACE = "urn:overstap:types:1"
UNKNOWN_ROOT_RULE = "XML-UNKNOWN-ROOT"
_IDC_RULE = "SCHEMAV_CVC_IDC"
_IDC_FOLLOW_UP = "No precomputed value available"


class UnknownDocumentType(InvalidRecord):
    """The root element is not one of our message types."""


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """One schema error: where (line, element path) and what (message, libxml2 rule).

    `path` is built from local names, e.g. `/dossier/leerling/bsn` or
    `/dossier/leerling/voornaam[2]` (an index only where siblings share the name); it is rooted
    at the element that was validated. `domain` and `rule` are libxml2's names for the error
    (e.g. `SCHEMASV` / `SCHEMAV_CVC_PATTERN_VALID`); our own checks use domain `OVERSTAP`.
    """

    line: int | None
    path: str
    message: str
    rule: str
    domain: str = "SCHEMASV"
    column: int | None = None
    schema: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "line ?"
        return f"{where}: {self.path or '/'}: {self.message} [{self.rule}]"


# ---------------------------------------------------------------------------------------------
# Locating and compiling


def xsd_dir() -> Path:
    """The schema directory: $OVERSTAP_XSD_DIR, else `xsd/` at the repository root."""
    return _resolved_xsd_dir(os.environ.get(XSD_DIR_ENV, "").strip())


@functools.lru_cache(maxsize=8)
def _resolved_xsd_dir(override: str) -> Path:
    # Resolving costs several lstat calls; validate() asks on every document.
    if override:
        return Path(override).resolve()
    return (Path(__file__).resolve().parents[2] / "xsd").resolve()


class _LocalOnlyResolver(etree.Resolver):  # type: ignore[misc, unused-ignore]
    """Lets libxml2 load files inside the schema directory and refuses everything else."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.refused: list[str] = []

    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        path = _local_path(system_url or "")
        if path is not None and path.is_relative_to(self.root):
            return None  # the parser's default loader reads it (no network either way)
        self.refused.append(system_url or f"public id {public_id}")
        raise OSError(f"refused to load {system_url!r}: outside {self.root}")


def _local_path(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return None
        return Path(unquote(parts.path)).resolve()
    if parts.scheme or not url:
        return None  # http, https, ftp, urn, ...: never
    return Path(url).resolve()


@dataclass(frozen=True, slots=True)
class _Compiled:
    schema: etree.XMLSchema
    lock: threading.Lock


_CACHE: dict[tuple[Path, str], _Compiled] = {}
_CACHE_LOCK = threading.Lock()


def _document_type(name: str) -> DocumentType:
    try:
        return DOCUMENT_TYPES[name]
    except KeyError:
        known = ", ".join(DOCUMENT_TYPES)
        raise ValueError(f"unknown schema {name!r}; known schemas: {known}") from None


def _compile(directory: Path, doc_type: DocumentType) -> _Compiled:
    path = directory / doc_type.file
    if not path.is_file():
        raise ConfigurationError(
            XSD_DIR_ENV, f"schema {doc_type.file} not found in {directory} (set {XSD_DIR_ENV})"
        )
    resolver = _LocalOnlyResolver(directory)
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
    )
    parser.resolvers.add(resolver)
    try:
        tree = etree.parse(str(path), parser)
        schema = etree.XMLSchema(tree)
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError, OSError) as exc:
        refused = f" (refused to load: {', '.join(resolver.refused)})" if resolver.refused else ""
        raise ConfigurationError(str(path), f"schema does not compile: {exc}{refused}") from exc
    return _Compiled(schema, threading.Lock())


def _compiled(name: str) -> _Compiled:
    doc_type = _document_type(name)
    key = (xsd_dir(), name)
    found = _CACHE.get(key)
    if found is not None:
        return found
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = _compile(key[0], doc_type)
            _CACHE[key] = found
        return found


def schema_for(name: str) -> etree.XMLSchema:
    """The compiled schema for a message type (`dossier`, `status`, `signal`, `receipt`,
    `manifest`); compiled on first use, the same object afterwards."""
    return _compiled(name).schema


def document_type_of(root: etree._Element) -> DocumentType:
    """The message type whose root element this is; `UnknownDocumentType` when none."""
    qname = etree.QName(root)
    found = _BY_QNAME.get(qname.text)
    if found is None:
        expected = ", ".join(sorted(_BY_QNAME))
        ns = f"namespace {qname.namespace!r}" if qname.namespace else "no namespace"
        raise UnknownDocumentType(
            f"root element <{qname.localname}> in {ns} is not an Overstap message; "
            f"expected one of {expected}",
            field="root",
            rule=UNKNOWN_ROOT_RULE,
        )
    return found


def schema_for_root(root: etree._Element) -> tuple[str, etree.XMLSchema]:
    """The schema name and compiled schema chosen by the root's namespace and local name."""
    doc_type = document_type_of(root)
    return doc_type.name, schema_for(doc_type.name)


# ---------------------------------------------------------------------------------------------
# Validating


def validate(
    root: etree._Element | etree._ElementTree, name: str | None = None
) -> list[SchemaViolation]:
    """Every violation of the document against its schema; empty when it is valid.

    `name` picks the schema; without it the root element decides (an unknown root is reported
    as one violation with rule `XML-UNKNOWN-ROOT`). Invalid documents never raise; an unknown
    `name` (a programming error) raises `ValueError`, a broken schema `ConfigurationError`.
    """
    element = root.getroot() if isinstance(root, etree._ElementTree) else root
    if name is None:
        try:
            name = document_type_of(element).name
        except UnknownDocumentType as exc:
            return [
                SchemaViolation(
                    line=element.sourceline or None,
                    path="/" + etree.QName(element).localname,
                    message=exc.reason,
                    rule=UNKNOWN_ROOT_RULE,
                    domain="OVERSTAP",
                )
            ]
    compiled = _compiled(name)
    with compiled.lock:
        try:
            valid = bool(compiled.schema(element))
            # Reading the error log allocates; a valid document (the usual case) skips it.
            entries = [] if valid else list(compiled.schema.error_log)
        except etree.XMLSchemaValidateError as exc:  # libxml2 internal error
            return [
                SchemaViolation(
                    line=None,
                    path="",
                    message=f"validation failed internally: {exc}",
                    rule="SCHEMA_INTERNAL_ERROR",
                    domain="OVERSTAP",
                    schema=name,
                )
            ]
    if valid:
        return []
    violations = [_violation(element, entry, name) for entry in entries]
    # An invalid field of an xs:unique/xs:key also yields an identity-constraint follow-up
    # ("No precomputed value available ...") at the same place: the first report says it all.
    reported = {v.path for v in violations if v.rule != _IDC_RULE}
    violations = [
        v
        for v in violations
        if not (v.rule == _IDC_RULE and _IDC_FOLLOW_UP in v.message and v.path in reported)
    ]
    if not violations:  # libxml2 said invalid without saying why
        violations.append(
            SchemaViolation(
                line=element.sourceline or None,
                path="/" + etree.QName(element).localname,
                message="document is not valid against its schema",
                rule="SCHEMA_INVALID",
                domain="OVERSTAP",
                schema=name,
            )
        )
    return violations


def _violation(validated: etree._Element, entry: Any, schema: str) -> SchemaViolation:
    target = _walk(validated, entry.path or "")
    path = _clean_path(validated, target) if target is not None else (entry.path or "")
    line: int | None = entry.line or None
    if line is None and target is not None:
        line = target.sourceline or None
    return SchemaViolation(
        line=line,
        path=path,
        message=redact(entry.message),
        rule=entry.type_name,
        domain=entry.domain_name,
        column=entry.column or None,
        schema=schema,
    )


_STEP = re.compile(r"(?:(?P<prefix>[^:\[\]/]+):)?(?P<name>[^:\[\]/]+)(?:\[(?P<index>[0-9]+)\])?")


def _walk(validated: etree._Element, raw_path: str) -> etree._Element | None:
    """The element libxml2's node path names, read relative to the validated element.

    libxml2 writes `*` (or `*[n]`, the n-th element child) for an element in a default
    namespace, `prefix:name[n]` (the n-th sibling of that name) for a prefixed one and
    `name[n]` for one in no namespace; the first step is the validated element itself.
    """
    steps = [s for s in raw_path.split("/") if s]
    if not steps:
        return None
    current = validated
    for step in steps[1:]:
        match = _STEP.fullmatch(step)
        if match is None or step.startswith("@") or step.endswith(")"):
            break  # an attribute, text or other non-element step: the element so far will do
        index = int(match["index"] or 1)
        children = [c for c in current.iterchildren() if isinstance(c.tag, str)]
        if match["name"] != "*":
            children = [
                c
                for c in children
                if etree.QName(c).localname == match["name"] and c.prefix == match["prefix"]
            ]
        if index > len(children):
            return None
        current = children[index - 1]
    return current


def _clean_path(validated: etree._Element, target: etree._Element) -> str:
    """`/dossier/leerling/voornaam[2]`: local names from the validated element down."""
    parts: list[str] = []
    node: etree._Element | None = target
    while node is not None:
        local = etree.QName(node).localname
        parent = node.getparent()
        if node is not validated and parent is not None:
            same = [sibling for sibling in parent if sibling.tag == node.tag]
            if len(same) > 1:
                local += f"[{same.index(node) + 1}]"
        parts.append(local)
        if node is validated:
            break
        node = parent
    return "/" + "/".join(reversed(parts))


# libxml2 quotes the offending value in these phrasings; the value may be personal data.
_VALUE_PATTERNS = (
    re.compile(r"(?P<lead>The value )'.*?'(?= (?:is|has|does)\b)", re.S),
    re.compile(r"(?P<lead>: )'.*?'(?= is not a valid value\b)", re.S),
)


def redact(message: str) -> str:
    """A libxml2 message with quoted values replaced by `[redacted]` (element names, facets,
    patterns and type names stay)."""
    text = message.strip()
    for pattern in _VALUE_PATTERNS:
        text = pattern.sub(lambda m: m["lead"] + "[redacted]", text)
    return text


__all__ = [
    "DOCUMENT_TYPES",
    "TYPES_NAMESPACE",
    "UNKNOWN_ROOT_RULE",
    "XSD_DIR_ENV",
    "DocumentType",
    "SchemaViolation",
    "UnknownDocumentType",
    "document_type_of",
    "redact",
    "schema_for",
    "schema_for_root",
    "validate",
    "xsd_dir",
]
