"""The hardened parser for inbound XML (overstap.xml.safe; SECURITY.md, "XML in, XML out").

Where an attack document can carry SECRET (in a value, a name, or a file or URL it points at),
it does, and the refusal is checked for not echoing it.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.errors import InvalidRecord
from overstap.xml import safe
from overstap.xml.safe import (
    RULE_DEPTH,
    RULE_DTD,
    RULE_ELEMENTS,
    RULE_ENCODING,
    RULE_ENTITY,
    RULE_SIZE,
    RULE_SYNTAX,
    UnsafeXml,
    XmlLimits,
    parse_untrusted,
    parse_untrusted_file,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "GEHEIM7f3a"
FAST = 1.0  # seconds; every refusal below takes milliseconds when the protection works

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


def quadratic_blowup(entity_size: int = 50_000, references: int = 50_000) -> bytes:
    """One large entity referenced many times: 200 KB of input, 2.5 GB when expanded."""
    return (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "'
        + b"x" * entity_size
        + b'">]><r>'
        + b"&a;" * references
        + b"</r>"
    )


def refused(data: bytes, **kwargs: object) -> UnsafeXml:
    with pytest.raises(UnsafeXml) as caught:
        parse_untrusted(data, **kwargs)  # type: ignore[arg-type]
    return caught.value


def assert_not_echoed(error: UnsafeXml, *secrets: str) -> None:
    """Neither the message nor anything else on the exception quotes the document."""
    texts = [str(error), repr(error), repr(error.args), error.reason, error.field]
    for secret in (SECRET, *secrets):
        for text in texts:
            assert secret not in text, f"{secret!r} echoed in {text!r}"


def timed_refusal(data: bytes, **kwargs: object) -> tuple[UnsafeXml, float]:
    start = time.perf_counter()
    error = refused(data, **kwargs)
    return error, time.perf_counter() - start


# --- DTDs and entities --------------------------------------------------------------------------


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(f"{SECRET}-file-content\n")
    return path


@pytest.mark.parametrize(
    "template",
    [
        # The classic XXE: an external general entity used in content.
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "{url}">]><r>&x;</r>',
        # ... used in an attribute value.
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}">]><r a="&x;"/>',
        # An external DTD as the document's own DTD.
        b'<!DOCTYPE r SYSTEM "{url}"><r/>',
        # An external parameter entity, expanded inside the internal subset.
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}">%p;]><r/>',
    ],
    ids=["general-entity", "entity-in-attribute", "external-dtd", "parameter-entity"],
)
@pytest.mark.parametrize("target", ["etc-passwd", "secret-file"])
def test_xxe_with_a_file_entity_is_refused_and_the_file_never_shows(
    template: bytes, target: str, secret_file: Path
) -> None:
    url = "file:///etc/passwd" if target == "etc-passwd" else secret_file.as_uri()
    error = refused(template.replace(b"{url}", url.encode()))

    assert error.rule == RULE_DTD
    assert "DOCTYPE" in str(error)
    assert_not_echoed(error, "root:", f"{SECRET}-file-content", url)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on a free loopback port: it sees every connection attempt in its backlog."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.settimeout(0.2)
        yield sock


def connections_made(sock: socket.socket) -> int:
    """How many connections reached the listener (the kernel completes them without accept())."""
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            return count
        conn.close()
        count += 1


@pytest.mark.parametrize(
    "template",
    [
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}">%p;]><r/>',
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "{url}"><!ENTITY % q "%p;">]><r/>',
        b'<!DOCTYPE r PUBLIC "-//X//DTD X//EN" "{url}"><r/>',
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "{url}">]><r>&x;</r>',
    ],
    ids=["parameter-entity", "nested-parameter-entity", "external-dtd", "general-entity"],
)
def test_external_entities_are_refused_without_a_network_attempt(
    template: bytes, listener: socket.socket
) -> None:
    """The DOCTYPE is refused before libxml2 could fetch anything, and nothing connects.

    The libxml2 2.14 bundled with lxml 6 has no HTTP client at all (no "http" in
    `etree.LIBXML_FEATURES`), so today the rule is what fails first if the DOCTYPE check goes;
    the listener guards against a build (or a system libxml2) that can fetch again.
    """
    port = listener.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{SECRET}.dtd"

    error = refused(template.replace(b"{url}", url.encode()))

    assert error.rule == RULE_DTD
    assert connections_made(listener) == 0
    assert_not_echoed(error, url)


def test_billion_laughs_is_refused_fast() -> None:
    error, elapsed = timed_refusal(BILLION_LAUGHS)

    assert error.rule == RULE_DTD
    assert elapsed < FAST


def test_quadratic_blowup_is_refused_fast() -> None:
    error, elapsed = timed_refusal(quadratic_blowup())

    assert error.rule == RULE_DTD
    assert elapsed < FAST


def test_quadratic_blowup_never_expands_the_entity_in_memory() -> None:
    """In a fresh process, so that the peak resident size says what this one parse cost."""
    script = textwrap.dedent(
        """
        import json, resource, sys, time
        from overstap.xml.safe import UnsafeXml, parse_untrusted
        size, references = 100_000, 100_000  # 10 GB if expanded
        doc = (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"x" * size + b'">]><r>'
            + b"&a;" * references + b"</r>"
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            parse_untrusted(doc)
            rule = None
        except UnsafeXml as error:
            rule = error.rule
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"rule": rule, "elapsed": elapsed, "grown_kib": after - before}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout)

    assert outcome["rule"] == RULE_DTD
    assert outcome["elapsed"] < FAST
    assert outcome["grown_kib"] < 32 * 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.parametrize(
    "doc",
    [
        b"<!DOCTYPE r><r/>",
        b'<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE r [<!ELEMENT r EMPTY>]><r/>',
        b'<!DOCTYPE r [<!ATTLIST r a CDATA "default">]><r/>',
        b"<!--" + b"x" * 200_000 + b"-->" + BILLION_LAUGHS.split(b"?>", 1)[1],
    ],
    ids=["bare-doctype", "internal-subset-after-comment", "attribute-default", "long-prolog"],
)
def test_any_doctype_at_all_is_refused(doc: bytes) -> None:
    assert refused(doc).rule == RULE_DTD


def test_a_doctype_split_over_chunks_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safe, "_CHUNK_SIZE", 3)

    assert refused(BILLION_LAUGHS).rule == RULE_DTD


def test_an_undeclared_entity_is_refused_with_its_line() -> None:
    error = refused(f"<r>\n<naam>{SECRET}&{SECRET};</naam>\n</r>".encode())

    assert error.rule == RULE_ENTITY
    assert error.line == 2
    assert_not_echoed(error)


def test_predefined_entities_and_character_references_are_fine() -> None:
    root = parse_untrusted(b"<r a='&quot;&#65;'>&lt;&gt;&amp;&apos;&#x42;</r>")

    assert root.text == "<>&'B"
    assert root.get("a") == '"A'


# --- size, depth, element count, lengths --------------------------------------------------------


def test_a_100_mb_document_is_refused_by_size_before_parsing() -> None:
    # Well-formed and within every other limit (100,000 elements of 1 KB), so only the size
    # check can refuse it, and only a check before parsing can do so in milliseconds.
    doc = b"<r>" + (b"<a>" + b"x" * 1000 + b"</a>") * 100_000 + b"</r>"
    assert len(doc) > 100_000_000

    error, elapsed = timed_refusal(doc)

    assert error.rule == RULE_SIZE
    assert f"{len(doc)} bytes" in str(error)
    assert elapsed < 0.1


def test_the_size_limit_is_inclusive() -> None:
    doc = b"<r>" + b"x" * 93 + b"</r>"  # 100 bytes
    limits = XmlLimits(max_bytes=100)

    assert parse_untrusted(doc, limits=limits).tag == "r"
    assert refused(doc + b" ", limits=limits).rule == RULE_SIZE


@pytest.mark.parametrize(
    ("max_depth", "line"),
    [(64, 65), (1000, 257)],  # ours, or libxml2's own cap of 256 (huge_tree stays off)
    ids=["our-limit", "above-libxml2-cap"],
)
def test_very_deep_nesting_is_refused_fast_without_a_crash(max_depth: int, line: int) -> None:
    doc = b"<a>\n" * 100_000 + b"</a>" * 100_000

    error, elapsed = timed_refusal(doc, limits=XmlLimits(max_depth=max_depth))

    assert error.rule == RULE_DEPTH
    assert error.line == line
    assert elapsed < FAST


def test_the_depth_limit_names_the_line() -> None:
    def nested(depth: int) -> bytes:
        return b"<a>\n" * depth + b"</a>" * depth

    limits = XmlLimits(max_depth=5)

    assert parse_untrusted(nested(5), limits=limits).tag == "a"
    error = refused(nested(6), limits=limits)
    assert error.rule == RULE_DEPTH
    assert error.line == 6
    assert "line 6" in str(error)


def test_the_element_limit_is_exact() -> None:
    limits = XmlLimits(max_elements=100)

    assert len(parse_untrusted(b"<r>" + b"<a/>" * 99 + b"</r>", limits=limits)) == 99
    error = refused(b"<r>\n" + b"<a/>\n" * 100 + b"</r>", limits=limits)
    assert error.rule == RULE_ELEMENTS
    assert error.line == 101


def test_too_many_elements_stop_the_parse_early() -> None:
    # 3,000,000 elements (12 MB, under max_bytes): building them all takes seconds and hundreds
    # of MB; stopping at element 1,001 takes milliseconds.
    doc = b"<r>" + b"<a/>" * 3_000_000 + b"</r>"

    error, elapsed = timed_refusal(doc, limits=XmlLimits(max_elements=1000))

    assert error.rule == RULE_ELEMENTS
    assert elapsed < FAST


def test_a_long_attribute_value_is_refused() -> None:
    limits = XmlLimits(max_attr_value=10)

    assert parse_untrusted(b"<r a='0123456789'/>", limits=limits).get("a") == "0123456789"
    error = refused(f"<r>\n<a b='{SECRET}x'/></r>".encode(), limits=limits)
    assert error.rule == RULE_SIZE
    assert error.line == 2
    assert_not_echoed(error)


@pytest.mark.parametrize(
    ("doc", "line"),
    [
        (f"<r>\n<a>{SECRET}x</a></r>", 2),  # element text
        (f"<r>\n<a/>{SECRET}x</r>", 2),  # tail of a child
        (f"<r>\n<a/><b/>\n{SECRET}x</r>", 2),  # tail of the last child
        (f"<r>{SECRET}<!-- c -->x</r>", 1),  # text joined across a removed comment
    ],
    ids=["text", "tail", "last-tail", "joined-text"],
)
def test_a_long_text_node_is_refused(doc: str, line: int) -> None:
    limits = XmlLimits(max_text=len(SECRET))

    error = refused(doc.encode(), limits=limits)

    assert error.rule == RULE_SIZE
    assert error.line == line
    assert_not_echoed(error)


def test_a_text_node_over_libxml2s_cap_is_a_size_error() -> None:
    error = refused(b"<r>" + b"x" * 10_500_000 + b"</r>")

    assert error.rule == RULE_SIZE


@pytest.mark.parametrize(
    "field", ["max_bytes", "max_depth", "max_elements", "max_attr_value", "max_text"]
)
@pytest.mark.parametrize("value", [0, -1])
def test_limits_must_be_positive(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        XmlLimits(**{field: value})


# --- comments, processing instructions, CDATA ---------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 13, 64 * 1024])
def test_a_comment_inside_a_value_is_removed_and_the_value_reads_whole(
    chunk_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SECURITY.md: a reader must never see the part of a value before a comment.

    With the comment kept, lxml gives `.text == "1234"` (the rest is the comment's tail). The
    parser drops it and libxml2 appends "56782" to the same text node, wherever the chunks split.
    """
    monkeypatch.setattr(safe, "_CHUNK_SIZE", chunk_size)
    doc = b"<r><BSN>1234<!-- x -->56782</BSN><naam>a<!--1-->b<!--2-->c</naam>tail<!--3-->end</r>"

    root = parse_untrusted(doc)

    bsn, naam = root
    assert bsn.text == "123456782"
    assert bsn.xpath("text()") == ["123456782"]  # one text node, not two joined by lxml
    assert len(bsn) == 0
    assert naam.text == "abc"
    assert naam.tail == "tailend"
    assert root.xpath("//comment()") == []
    assert root.getroottree().xpath("/comment()") == []
    assert etree.tostring(root) == (b"<r><BSN>123456782</BSN><naam>abc</naam>tailend</r>")


def test_processing_instructions_are_removed_everywhere() -> None:
    doc = (
        b'<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="http://x/s.xsl"?>\n'
        b"<r><BSN>1234<?pi x?>56782</BSN></r>\n<?after?>"
    )

    root = parse_untrusted(doc)

    assert root[0].text == "123456782"
    assert root.getroottree().xpath("//processing-instruction()") == []
    assert root.getprevious() is None
    assert root.getnext() is None


def test_cdata_is_merged_into_the_text() -> None:
    root = parse_untrusted(b"<r>12<![CDATA[34<x>]]>56</r>")

    assert root.text == "1234<x>56"
    assert root.xpath("text()") == ["1234<x>56"]  # one text node: an XPath reader sees it whole
    assert etree.tostring(root) == b"<r>1234&lt;x&gt;56</r>"


# --- what comes through -------------------------------------------------------------------------


def test_a_valid_document_with_namespaces_keeps_them() -> None:
    doc = (
        b'<d:dossier xmlns:d="urn:overstap:dossier:1" xmlns="urn:default" '
        b'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" d:versie="1">\n'
        b'  <leerling id="L1"><d:bsn>123456782</d:bsn></leerling>\n'
        b"  <ds:Signature><ds:SignedInfo/></ds:Signature>\n"
        b"</d:dossier>"
    )

    root = parse_untrusted(doc)

    assert root.tag == "{urn:overstap:dossier:1}dossier"
    assert root.prefix == "d"
    assert root.nsmap == {
        "d": "urn:overstap:dossier:1",
        None: "urn:default",
        "ds": "http://www.w3.org/2000/09/xmldsig#",
    }
    assert root.get("{urn:overstap:dossier:1}versie") == "1"
    leerling = root[0]
    assert leerling.tag == "{urn:default}leerling"
    assert leerling.sourceline == 2
    assert leerling.findtext("{urn:overstap:dossier:1}bsn") == "123456782"
    assert root[1].tag == "{http://www.w3.org/2000/09/xmldsig#}Signature"
    assert etree.tostring(root) == doc  # declarations, prefixes and whitespace as received


def test_an_undeclared_namespace_prefix_is_a_syntax_error() -> None:
    error = refused(b"<r>\n<p:a/></r>")

    assert error.rule == RULE_SYNTAX
    assert error.line == 2


def test_a_utf8_document_with_bom_and_declaration_passes_require_utf8() -> None:
    doc = '\ufeff<?xml version="1.0" encoding="UTF-8"?><r>é</r>'.encode()

    assert parse_untrusted(doc, require_utf8=True).text == "é"
    assert parse_untrusted(b"<r>\xc3\xa9</r>", require_utf8=True).text == "é"


NOT_UTF8 = {
    "iso-8859-1": '<?xml version="1.0" encoding="ISO-8859-1"?><r>é</r>'.encode("latin-1"),
    "windows-1252": "<?xml version='1.0' encoding='windows-1252'?><r>é€</r>".encode("cp1252"),
    "utf-16-bom": "<r>é</r>".encode("utf-16"),
    "utf-16-declared": '<?xml version="1.0" encoding="UTF-16"?><r>é</r>'.encode("utf-16-le"),
}


def test_require_utf8_judges_the_declaration_before_the_body() -> None:
    doc = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<r>é</x>'.encode("latin-1")

    assert refused(doc, require_utf8=True).rule == RULE_ENCODING
    assert refused(doc).rule == RULE_SYNTAX


@pytest.mark.parametrize("doc", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_require_utf8_refuses_other_encodings(doc: bytes) -> None:
    error = refused(doc, require_utf8=True)

    assert error.rule == RULE_ENCODING


@pytest.mark.parametrize("doc", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_other_encodings_are_read_when_utf8_is_not_required(doc: bytes) -> None:
    root = parse_untrusted(doc)

    assert root.tag == "r"
    assert root.text.startswith("é")


@pytest.mark.parametrize(
    "doc",
    [
        b"<r>\n\xff\xfe</r>",  # not UTF-8 at all
        b'<?xml version="1.0" encoding="x-no-such-encoding"?><r/>',
    ],
    ids=["invalid-utf8", "unknown-encoding"],
)
def test_bytes_that_do_not_decode_are_an_encoding_error(doc: bytes) -> None:
    assert refused(doc).rule == RULE_ENCODING


# --- malformed documents and messages -----------------------------------------------------------


def test_malformed_xml_is_a_syntax_error_with_its_line_and_without_its_text() -> None:
    doc = f"<r>\n<BSN>123456782</BSN>\n<achternaam>{SECRET}</voornaam>\n</r>".encode()

    error = refused(doc, source="sis-export.xml")

    assert error.rule == RULE_SYNTAX
    assert error.line == 3
    assert "line 3" in str(error)
    assert str(error).startswith("sis-export.xml: ")
    assert_not_echoed(error, "123456782", "achternaam", "voornaam", "BSN")


def test_a_syntax_error_after_the_first_chunk_names_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(safe, "_CHUNK_SIZE", 16)
    doc = b"<r>\n" + b"<a>ok</a>\n" * 50 + b"<b></c>\n</r>"

    error = refused(doc)

    assert error.rule == RULE_SYNTAX
    assert error.line == 52


@pytest.mark.parametrize(
    "doc", [b"", b"  \n ", b"<?xml version='1.0'?>", b"<r>", b"<r/><r/>", b"just text"]
)
def test_documents_without_one_whole_root_are_syntax_errors(doc: bytes) -> None:
    assert refused(doc).rule == RULE_SYNTAX


@pytest.mark.parametrize("doc", [b"", b"  \n "])
def test_an_empty_document_is_called_empty(doc: bytes) -> None:
    assert "the document is empty" in str(refused(doc))


REFUSED_WITH_SECRETS = {
    "dtd": f'<!DOCTYPE {SECRET} [<!ENTITY {SECRET} "{SECRET}">]><{SECRET}/>',
    "entity": f"<r>&{SECRET};</r>",
    "syntax": f"<{SECRET}></{SECRET}x>",
    "attribute": f"<r {SECRET}='1' {SECRET}='2'/>",
    "depth": f"<{SECRET}>" * 70 + f"</{SECRET}>" * 70,
    "elements": "<r>" + f"<{SECRET}/>" * 20 + "</r>",
    "prefix": f"<{SECRET}:r/>",
    "encoding": f'<?xml version="1.0" encoding="{SECRET}"?><r/>',
}


@pytest.mark.parametrize("doc", REFUSED_WITH_SECRETS.values(), ids=REFUSED_WITH_SECRETS.keys())
def test_error_messages_never_contain_document_text(doc: str) -> None:
    error = refused(doc.encode(), limits=XmlLimits(max_elements=10))

    assert_not_echoed(error)


def test_unsafe_xml_is_an_invalid_record_and_keeps_its_position_per_record() -> None:
    error = refused(b"<r>\n</x>", source="bevestiging.xml")

    assert isinstance(error, InvalidRecord)
    assert isinstance(error, ValueError)
    assert error.field == "bevestiging.xml"
    renamed = error.for_record("dossier 42")
    assert isinstance(renamed, UnsafeXml)
    assert (renamed.rule, renamed.line, renamed.column) == (error.rule, 2, error.column)
    assert str(renamed).startswith("record dossier 42: bevestiging.xml: ")
    assert str(renamed).count("line 2") == 1


def test_str_is_not_accepted() -> None:
    with pytest.raises(TypeError, match="bytes"):
        parse_untrusted("<r/>")  # type: ignore[arg-type]


# --- files ---------------------------------------------------------------------------------------


def test_a_file_is_parsed_and_named_by_its_file_name(tmp_path: Path) -> None:
    path = tmp_path / "leerlingen.xml"
    path.write_bytes(b"<r><a>1</a></r>")

    assert parse_untrusted_file(path).findtext("a") == "1"
    path.write_bytes(b"<r>")
    assert str(refused_file(path)).startswith("leerlingen.xml: ")


def refused_file(path: Path, **kwargs: object) -> UnsafeXml:
    with pytest.raises(UnsafeXml) as caught:
        parse_untrusted_file(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_a_large_file_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.xml"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: 200 MiB on paper, nothing on disk

    start = time.perf_counter()
    error = refused_file(path)

    assert error.rule == RULE_SIZE
    assert f"{200 * 1024 * 1024} bytes" in str(error)  # stat knew; a bounded read could not
    assert time.perf_counter() - start < 0.1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_file_that_reports_no_size_is_read_only_up_to_the_limit(tmp_path: Path) -> None:
    """A pipe (or a file still growing) says st_size 0: the read itself must stop at the limit."""
    fifo = tmp_path / "stream.xml"
    os.mkfifo(fifo)
    offered = 10 * 1024 * 1024
    written = 0

    def write() -> None:
        nonlocal written
        chunk = b"<a/>" * 16 * 1024
        try:
            with fifo.open("wb") as pipe:
                while written < offered:
                    pipe.write(chunk)
                    written += len(chunk)
        except BrokenPipeError:
            pass  # the reader stopped reading and closed: what we want

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    error = refused_file(fifo, limits=XmlLimits(max_bytes=1000))
    writer.join(timeout=10)

    assert error.rule == RULE_SIZE
    assert not writer.is_alive()
    assert written < 1024 * 1024  # the pipe buffer and one chunk, not the 10 MB on offer


def test_a_compressed_file_is_not_decompressed(tmp_path: Path) -> None:
    """libxml2 inflates gzip files it opens itself (a zip bomb route); we hand it bytes only."""
    path = tmp_path / "export.xml.gz"
    path.write_bytes(gzip.compress(b"<r>" + b"<a/>" * 1000 + b"</r>"))

    error = refused_file(path, limits=XmlLimits(max_elements=10))

    assert error.rule == RULE_SYNTAX


# --- threads --------------------------------------------------------------------------------------


def test_the_per_thread_prolog_parser_starts_afresh_for_every_document() -> None:
    """One thread's prolog parser sees refused, abandoned and accepted documents in turn."""
    sequence: list[tuple[bytes, str | None]] = [
        (b"<!DOCTYPE r><r/>", RULE_DTD),
        (b"<r><a/></r>", None),
        (b"<r>" + b"<a/>" * 50, RULE_ELEMENTS),  # abandoned half way, and never closed
        (b"<?xml version='1.0'?><!-- c --><!DOCTYPE r [<!ENTITY a 'x'>]><r>&a;</r>", RULE_DTD),
        (b"<r></x>", RULE_SYNTAX),
        ("<?xml version='1.0' encoding='ISO-8859-1'?><r>é</r>".encode("latin-1"), None),
        ("<r>é</r>".encode("utf-16"), None),
        (b"<!DOCTYPE r><r/>", RULE_DTD),
        (b"<", RULE_SYNTAX),
        (b"<!DOCTYPE r><r/>", RULE_DTD),
        (b"<r/>", None),
    ]
    outcomes: list[str | None] = []
    for doc, _ in sequence * 3:
        try:
            parse_untrusted(doc, limits=XmlLimits(max_elements=10))
            outcomes.append(None)
        except UnsafeXml as error:
            outcomes.append(error.rule)

    assert outcomes == [rule for _, rule in sequence] * 3
    assert safe._prolog_parser() is safe._prolog_parser()
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(safe._prolog_parser).result() is not safe._prolog_parser()


def test_parsing_from_many_threads_gives_every_caller_its_own_tree() -> None:
    def document(n: int) -> bytes:
        return (f"<r n='{n}'>" + f"<a>{n}</a>" * 2000 + "</r>").encode()

    barrier = threading.Barrier(8)

    def parse(n: int) -> tuple[str, set[str]]:
        barrier.wait()
        root = parse_untrusted(document(n))
        return root.get("n"), {a.text for a in root}

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(parse, range(8)))

    assert results == [(str(n), {str(n)}) for n in range(8)]
