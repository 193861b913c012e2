"""The one hardened parser for every XML byte that comes from outside (SECURITY.md, "XML in, XML out").

SIS exports, SOAP requests and responses, confirmation files and signal receipts are all parsed
with `parse_untrusted()` (or `parse_untrusted_file()`); nothing in the hub calls
`lxml.etree.fromstring`/`parse`/`XML` on outside bytes. What a caller gets back is a tree that

- had no DOCTYPE at all: a document with one is refused (rule XML-DTD) before libxml2 has read a
  single declaration of it, so external entities (XXE), parameter entities, an external DTD,
  billion laughs and quadratic blowup are never declared, let alone expanded or fetched;
- was parsed without network access, entity substitution, DTD loading or validation, and without
  libxml2's `huge_tree` escape hatch, so libxml2's own hard caps stay on as a second line;
- fits the `XmlLimits` (size, depth, element count, attribute and text length), checked while
  parsing so that a hostile document is dropped early instead of being built in full;
- has no comments and no processing instructions, removed by the parser itself, so that a value
  is read whole: `<BSN>1234<!-- x -->56782</BSN>` gives `text == "123456782"` and no comment node
  (libxml2 appends the characters after a dropped comment to the text node before it; the tests
  check this for every split of the input into chunks). CDATA sections are merged into the text
  the same way (`strip_cdata=True`).

How it works, in three steps per call:

1. Size: `len(data) > limits.max_bytes` is refused before any parser exists (XML-SIZE).
2. Prolog: a parser (this thread's, see "Threads") with a target that only listens for the
   DOCTYPE and the first start tag is fed the bytes in chunks. libxml2 reports the DOCTYPE (the SAX `internalSubset` event) right after
   its name and external id and before the `[...]` internal subset, so raising there stops the
   parse before any `<!ENTITY` is read; a target parser also has no document to store entity
   declarations in. The first start tag ends this step: a DOCTYPE cannot follow it. This step
   reads the prolog and at most the rest of the chunk it ends in, so it costs next to nothing.
3. Body: an `XMLPullParser` builds the tree from the same bytes, chunk by chunk, and every start
   and end event is checked against the limits; the first violation raises, and the partial tree
   is dropped. A tree that still carries a DOCTYPE is refused again (belt and braces).

Errors. Every refusal is `UnsafeXml`, an `InvalidRecord` (quarantine the document, go on with the
batch), with a rule id (the `RULE_*` constants), `field` set to the caller's `source` name and the
line where one is known. Messages never hold document text: libxml2's own messages quote tag names
and sometimes values, so only libxml2's error type and position are passed on.

Processing instructions. All of them are removed, in the prolog and in the body, like comments:
no message type of ours defines one, and nothing in the hub acts on one (an `xml-stylesheet` PI
in a SIS export is dropped, never followed). They are not refused, because some SIS exports
carry one. Note that exclusive C14N keeps PIs, so a PI *inside* a signed element makes the
signature check fail afterwards; that is the safe outcome. `RULE_PI` is therefore not raised
today; a misplaced `<?xml ...?>` declaration is a syntax error (XML-SYNTAX).

Encodings. Edukoppeling allows UTF-8 only; SIS exports may come in windows-1252 or ISO-8859-1.
`require_utf8=True` refuses a document whose byte order mark, byte pattern or encoding
declaration says anything but UTF-8 (XML-ENCODING), before parsing. Bytes that do not decode in
the declared encoding, and unknown encodings, are XML-ENCODING always.

Threads. lxml parser objects are not thread-safe. Measured with lxml 6.1.3 on the CI machine:

- The prolog parser is kept per thread (`threading.local`). Creating one is cheap (2.5 µs), but
  the first feed of a parser with a Python target costs about 80 µs more (lxml inspects the
  target's methods), which is more than the rest of the parse of a small message: the prolog
  step takes 20 µs with a per-thread parser and 100 µs with a new one per call. The parser
  holds no tree, and `close()` after every use (also after an abandoned parse; lxml resets a
  feed parser whose `feed()` raised, too) makes it start afresh with the next document; the
  tests parse refused, abandoned and accepted documents in turn on one parser.
- The pull parser is created per call (3.6 µs). It holds the tree being built, so a per-thread
  one would keep the partial tree of a refused document (up to hundreds of MB) alive until the
  thread's next parse, and would have to be reset after every parse that stopped half way.

Cost. A small message (a few elements) takes about 65 µs against 13 µs for a bare
`fromstring`; a 43 KB dossier of 2,500 elements 7 ms against 2 ms; a document at the
1,000,000-element limit about 3 s against 0.7 s. The difference is the chunked pull parse and
the per-element checks in Python (about 2 µs an element): the price of stopping a hostile
document early instead of building it in full, and small next to signature checks and I/O.

XSLT. XSLT from outside is never applied. XSLT that the hub ships itself must be compiled with
`etree.XSLT(xslt_doc, access_control=etree.XSLTAccessControl.DENY_ALL)` (no file or network
access from the stylesheet). Likewise, never call `.xinclude()` on a tree from outside.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.errors import InvalidRecord

__all__ = [
    "DEFAULT_LIMITS",
    "RULE_DEPTH",
    "RULE_DTD",
    "RULE_ELEMENTS",
    "RULE_ENCODING",
    "RULE_ENTITY",
    "RULE_PI",
    "RULE_SIZE",
    "RULE_SYNTAX",
    "UnsafeXml",
    "XmlLimits",
    "parse_untrusted",
    "parse_untrusted_file",
]

RULE_DTD: Final = "XML-DTD"
"""The document has a DOCTYPE (internal subset, external DTD or both)."""
RULE_ENTITY: Final = "XML-ENTITY"
"""An entity reference that is not one of the five predefined ones (there is no DTD to declare it)."""
RULE_SIZE: Final = "XML-SIZE"
"""Too many bytes, or an attribute value or text node that is too long."""
RULE_DEPTH: Final = "XML-DEPTH"
"""Elements nested deeper than `XmlLimits.max_depth`."""
RULE_ELEMENTS: Final = "XML-ELEMENTS"
"""More elements than `XmlLimits.max_elements`."""
RULE_SYNTAX: Final = "XML-SYNTAX"
"""Not well-formed XML."""
RULE_ENCODING: Final = "XML-ENCODING"
"""Not UTF-8 while UTF-8 is required, an unknown encoding, or bytes invalid in the encoding."""
RULE_PI: Final = "XML-PI"
"""Reserved: processing instructions are removed, not refused (see the module docstring)."""

_CHUNK_SIZE = 64 * 1024
"""Bytes fed to libxml2 at a time: the granularity of the early exit on a violated limit."""

_LIBXML2_MAX_DEPTH: Final = 256
"""libxml2 refuses deeper nesting itself unless `huge_tree` is set (which we never do)."""


@dataclass(frozen=True)
class XmlLimits:
    """What one inbound document may cost. Lengths of text and attributes are in characters.

    The defaults fit the largest legitimate input, a SIS export of a whole school or a dossier
    with attachments, with room to spare, and stop anything that exists only to exhaust memory:

    - `max_bytes` 20 MiB: a SIS export of a whole school (a few thousand students) is a few MiB,
      and a dossier with base64 attachments stays well under it. It also bounds memory: a libxml2
      tree of small elements takes about 30 times its input (14 MB -> 460 MB, measured).
    - `max_depth` 64: the full OSO example dossier nests 12 levels, a SOAP envelope with
      WS-Security headers adds a few. (libxml2 itself stops at 256 without `huge_tree`; a higher
      value has no effect.)
    - `max_elements` 1,000,000: a school export of 2,000 students at a few hundred elements each
      stays below it; a million elements take about 3 s and 450 MB to parse and check.
    - `max_attr_value` 64 KiB: attributes hold ids, codes, dates and URIs, never payloads.
    - `max_text` 16 MiB: one text node may be a base64 attachment. In practice libxml2 refuses a
      text node of more than 10,000,000 bytes first (again because `huge_tree` stays off), with
      the same rule XML-SIZE; set a lower value for message types without attachments.
    """

    max_bytes: int = 20 * 1024 * 1024
    max_depth: int = 64
    max_elements: int = 1_000_000
    max_attr_value: int = 64 * 1024
    max_text: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"XmlLimits.{f.name} must be a positive int, got {value!r}")


DEFAULT_LIMITS: Final = XmlLimits()


class UnsafeXml(InvalidRecord):
    """An inbound document that the hardened parser refuses: quarantine it, go on with the batch.

    `rule` is one of the `RULE_*` ids, `field` names the document (the `source` given to the
    parser), and `line` and `column` say where in the document the problem was found, if known.
    The message never quotes the document.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str,
        rule: str,
        record: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.line = line
        self.column = column
        where = ""
        if line is not None:
            where = f" at line {line}" + (f", column {column}" if column is not None else "")
        super().__init__(f"{message}{where}", field=field, rule=rule, record=record)
        # `reason` stays the bare message so that for_record() does not repeat the position.
        self.reason = message

    def for_record(self, record: str) -> UnsafeXml:
        """The same error, now naming the record it was found in."""
        return type(self)(
            self.reason,
            field=self.field,
            rule=self.rule,
            record=record,
            line=self.line,
            column=self.column,
        )


def parse_untrusted(
    data: bytes,
    *,
    limits: XmlLimits = DEFAULT_LIMITS,
    source: str = "document",
    require_utf8: bool = False,
) -> etree._Element:
    """Parse bytes from outside into a tree and return its root element.

    Raises `UnsafeXml` (an `InvalidRecord`) when the document is refused; see the module docstring
    for what is refused and why.
    """
    if not isinstance(data, bytes):
        # A str has lost its encoding declaration's meaning; bytearray/memoryview: copy to bytes.
        raise TypeError(f"parse_untrusted() takes bytes, not {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise UnsafeXml(
            f"document of {len(data)} bytes is larger than the limit of {limits.max_bytes} bytes",
            field=source,
            rule=RULE_SIZE,
        )
    if require_utf8:
        _require_utf8(data, source)
    _refuse_doctype(data, source)
    root = _build_tree(data, limits, source)
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        # Unreachable while step 2 works; kept so that a regression there still fails closed.
        raise UnsafeXml("a DOCTYPE (DTD) is not allowed", field=source, rule=RULE_DTD)
    if require_utf8 and (docinfo.encoding or "UTF-8").lower() not in _UTF8_NAMES:
        raise UnsafeXml("the document is not encoded in UTF-8", field=source, rule=RULE_ENCODING)
    return root


def parse_untrusted_file(
    path: Path,
    *,
    limits: XmlLimits = DEFAULT_LIMITS,
    source: str | None = None,
    require_utf8: bool = False,
) -> etree._Element:
    """`parse_untrusted()` for a file: the size is checked with stat() before a byte is read.

    At most `max_bytes + 1` bytes are read, so a file that grows after the stat (or a device such
    as /dev/zero that reports size 0) is still refused by size. `source` defaults to the file name.
    """
    name = source if source is not None else path.name
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise UnsafeXml(
            f"file of {size} bytes is larger than the limit of {limits.max_bytes} bytes",
            field=name,
            rule=RULE_SIZE,
        )
    with path.open("rb") as handle:
        data = handle.read(limits.max_bytes + 1)
    return parse_untrusted(data, limits=limits, source=name, require_utf8=require_utf8)


# --- step 1b: encoding ------------------------------------------------------------------------

_UTF8_NAMES: Final = frozenset({"utf-8", "utf8"})

# XML 1.0 appendix F: what the first four bytes say about the encoding family.
_NOT_UTF8_SIGNATURES: Final = (
    (b"\x00\x00\xfe\xff", "UTF-32 (byte order mark)"),
    (b"\xff\xfe\x00\x00", "UTF-32 (byte order mark)"),
    (b"\xfe\xff", "UTF-16 (byte order mark)"),
    (b"\xff\xfe", "UTF-16 (byte order mark)"),
    (b"\x00\x00\x00\x3c", "UTF-32"),
    (b"\x3c\x00\x00\x00", "UTF-32"),
    (b"\x00\x3c\x00\x3f", "UTF-16"),
    (b"\x3c\x00\x3f\x00", "UTF-16"),
    (b"\x4c\x6f\xa7\x94", "EBCDIC"),
)

_ENCODING_DECLARATION: Final = re.compile(
    rb"""<\?xml\s[^>]*?\bencoding\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.ASCII
)


def _require_utf8(data: bytes, source: str) -> None:
    """Refuse a document whose signature or declaration names another encoding than UTF-8."""
    for signature, family in _NOT_UTF8_SIGNATURES:
        if data.startswith(signature):
            raise UnsafeXml(
                f"the document is encoded in {family}; only UTF-8 is accepted here",
                field=source,
                rule=RULE_ENCODING,
            )
    head = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    end = head.find(b"?>", 0, 1024) if head.startswith(b"<?xml") else -1
    # No declaration: UTF-8 by definition (libxml2 checks the bytes). A declaration without an
    # end, or without an encoding, is left to libxml2 as well: it is a syntax error or UTF-8.
    match = _ENCODING_DECLARATION.match(head[: end + 2]) if end >= 0 else None
    if match is None:
        return
    declared = (match.group(1) or match.group(2) or b"").decode("ascii", "replace").lower()
    if declared not in _UTF8_NAMES:
        # The declared name is metadata, not content, but it is still not echoed: it could be
        # anything the sender typed.
        raise UnsafeXml(
            "the XML declaration names an encoding other than UTF-8; only UTF-8 is accepted here",
            field=source,
            rule=RULE_ENCODING,
        )


# --- step 2: no DOCTYPE ----------------------------------------------------------------------


def _parser_options() -> dict[str, Any]:
    """The options of every parser here; one place, so that the two steps cannot drift apart."""
    return {
        "resolve_entities": False,
        "no_network": True,
        "load_dtd": False,
        "dtd_validation": False,
        "attribute_defaults": False,
        "huge_tree": False,
        "remove_comments": True,
        "remove_pis": True,
        "strip_cdata": True,
    }


class _DoctypeFound(Exception):
    """Raised by the prolog target on the DOCTYPE event; stops libxml2 there."""


class _PrologDone(Exception):
    """Raised by the prolog target on the first start tag: no DOCTYPE can come any more."""


class _PrologTarget:
    """A parser target that only watches the prolog (lxml calls the methods that exist)."""

    def doctype(self, name: object, pubid: object, system: object) -> None:
        raise _DoctypeFound

    def start(self, tag: object, attrib: object) -> None:
        raise _PrologDone

    def close(self) -> None:
        return None


_per_thread = threading.local()


def _prolog_parser() -> Any:
    """This thread's prolog parser (see "Threads" in the module docstring for why per thread)."""
    parser = getattr(_per_thread, "prolog_parser", None)
    if parser is None:
        parser = etree.XMLParser(target=_PrologTarget(), **_parser_options())
        _per_thread.prolog_parser = parser
    return parser


def _refuse_doctype(data: bytes, source: str) -> None:
    if not data or data.isspace():
        raise UnsafeXml("the document is empty", field=source, rule=RULE_SYNTAX)
    parser = _prolog_parser()
    try:
        for offset in range(0, len(data), _CHUNK_SIZE):
            parser.feed(data[offset : offset + _CHUNK_SIZE])
        parser.close()  # no start tag at all: libxml2 says why (empty, truncated, ...)
    except _PrologDone:
        return
    except _DoctypeFound:
        raise UnsafeXml(
            "a DOCTYPE (DTD) is not allowed: external and internal entities and DTDs are refused",
            field=source,
            rule=RULE_DTD,
        ) from None
    except etree.XMLSyntaxError as error:
        raise _syntax_error(error, source) from None
    finally:
        # A feed parser starts a new document after close(), also after a parse that stopped
        # half way; whatever close() says about the abandoned document is of no interest.
        with contextlib.suppress(Exception):
            parser.close()
    # Only reached when close() returned without a start tag, which libxml2 does not do.
    raise UnsafeXml("the document has no root element", field=source, rule=RULE_SYNTAX)


# --- step 3: the tree, within the limits --------------------------------------------------------


class _LimitChecker:
    """Checks the events of a pull parser against the limits, keeping depth and count."""

    def __init__(self, limits: XmlLimits, source: str, size: int) -> None:
        self.limits = limits
        self.source = source
        self.depth = 0
        self.elements = 0
        # Without a DTD nothing expands: no value can have more characters than the document has
        # bytes. Skipping a check that cannot fail saves up to 40% of the time.
        self.check_attrs = limits.max_attr_value < size
        self.check_text = limits.max_text < size

    def check(self, events: Any) -> None:
        limits = self.limits
        for event, element in events:
            if event == "start":
                self.depth += 1
                self.elements += 1
                if self.depth > limits.max_depth:
                    raise self._error(
                        f"elements are nested deeper than the limit of {limits.max_depth}",
                        RULE_DEPTH,
                        element,
                    )
                if self.elements > limits.max_elements:
                    raise self._error(
                        f"the document has more elements than the limit of {limits.max_elements}",
                        RULE_ELEMENTS,
                        element,
                    )
                if self.check_attrs:
                    for value in element.values():
                        if len(value) > limits.max_attr_value:
                            raise self._error(
                                f"an attribute value is longer than the limit of {limits.max_attr_value} characters",
                                RULE_SIZE,
                                element,
                            )
            else:  # "end"
                self.depth -= 1
                if self.check_text:
                    self._check_text(element)

    def _check_text(self, element: etree._Element) -> None:
        """At its end event, an element's text and its children's tails are complete."""
        limit = self.limits.max_text
        text = element.text
        if text is not None and len(text) > limit:
            raise self._error(
                f"a text node is longer than the limit of {limit} characters", RULE_SIZE, element
            )
        for child in element:
            tail = child.tail
            if tail is not None and len(tail) > limit:
                raise self._error(
                    f"a text node is longer than the limit of {limit} characters", RULE_SIZE, child
                )

    def _error(self, message: str, rule: str, element: etree._Element) -> UnsafeXml:
        return UnsafeXml(message, field=self.source, rule=rule, line=element.sourceline)


def _build_tree(data: bytes, limits: XmlLimits, source: str) -> etree._Element:
    parser = etree.XMLPullParser(events=("start", "end"), **_parser_options())
    checker = _LimitChecker(limits, source, len(data))
    try:
        for offset in range(0, len(data), _CHUNK_SIZE):
            parser.feed(data[offset : offset + _CHUNK_SIZE])
            checker.check(parser.read_events())
        root = parser.close()
        checker.check(parser.read_events())
    except etree.XMLSyntaxError as error:
        # Events parsed before the error are still queued; a limit they break is the better
        # reason (a 100,000-deep nesting is "too deep", not libxml2's "excessive depth").
        checker.check(parser.read_events())
        if not (error.position and error.position[0]):
            error = _diagnose(data) or error
        raise _syntax_error(error, source) from None
    return root


class _NoTarget:
    """A parser target that builds nothing: for finding where a document goes wrong."""

    def close(self) -> None:
        return None


def _diagnose(data: bytes) -> etree.XMLSyntaxError | None:
    """The error of a one-shot parse of `data`, or None if that finds none with a position.

    In feed mode and with `resolve_entities=False`, libxml2 stops at an undeclared entity
    reference without reporting it, and the pull parser only says "no element found" at line 0.
    A one-shot parse (no tree, same options; the DOCTYPE check has passed) reports it with its
    line. Only ever run on a document that is being refused anyway.
    """
    try:
        etree.fromstring(data, etree.XMLParser(target=_NoTarget(), **_parser_options()))
    except etree.XMLSyntaxError as error:
        if error.position and error.position[0]:
            return error
    return None


# --- libxml2 errors, without their text ---------------------------------------------------------

_ERROR_NAMES: Final[dict[int, str]] = {
    value: name
    for name, value in vars(etree.ErrorTypes).items()
    if name.isupper() and isinstance(value, int)
}

_ENCODING_ERRORS: Final = frozenset(
    {
        etree.ErrorTypes.ERR_UNSUPPORTED_ENCODING,
        etree.ErrorTypes.ERR_INVALID_ENCODING,
        etree.ErrorTypes.ERR_UNKNOWN_ENCODING,
    }
)

_ENTITY_ERRORS: Final = frozenset(
    {
        etree.ErrorTypes.ERR_UNDECLARED_ENTITY,
        etree.ErrorTypes.WAR_UNDECLARED_ENTITY,
        etree.ErrorTypes.ERR_ENTITY_LOOP,
        etree.ErrorTypes.ERR_ENTITY_PE_INTERNAL,
    }
)


def _syntax_error(error: etree.XMLSyntaxError, source: str) -> UnsafeXml:
    """Translate libxml2's error into ours, keeping its type and position but not its text.

    libxml2 quotes tag names, entity names and sometimes values in its messages
    ("Opening and ending tag mismatch: naam line 3 and nam"), so its text is dropped.
    """
    code = int(error.code)
    line, column = error.position if error.position else (0, 0)
    name = _ERROR_NAMES.get(code, f"libxml2 error {code}")
    kind = name.removeprefix("ERR_").removeprefix("WAR_").lower().replace("_", " ")
    if code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
        # libxml2's hard caps without huge_tree: nesting 256, text node 10,000,000 bytes, ...
        # Its message is the only place that says which cap; it names no document content.
        if "depth" in str(error.msg).lower():
            rule, message = RULE_DEPTH, f"elements are nested deeper than {_LIBXML2_MAX_DEPTH}"
        else:
            rule, message = RULE_SIZE, "a text node, name or attribute exceeds libxml2's hard limit"
    elif code in _ENCODING_ERRORS:
        rule, message = RULE_ENCODING, f"the bytes do not match the document's encoding ({kind})"
    elif code in _ENTITY_ERRORS:
        rule, message = RULE_ENTITY, f"an entity reference that is not predefined ({kind})"
    else:
        rule, message = RULE_SYNTAX, f"the document is not well-formed XML ({kind})"
    return UnsafeXml(
        message, field=source, rule=rule, line=line or None, column=column if line else None
    )
