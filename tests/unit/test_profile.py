"""The VO-MBO profile rules (overstap.xml.profile) on mutations of the fixture dossier."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from overstap.xml.profile import (
    DS_NS,
    NS,
    AttachmentLimits,
    ProfileRejected,
    ProfileViolation,
    Severity,
    check_profile,
    errors,
    require_profile,
)
from overstap.xml.schemas import validate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xml" / "dossier.xml"
TODAY = date(2025, 3, 1)
# Personal values of the fixture that no message may repeat.
PERSONAL = ("111222333", "2009-05-14", "Sem", "Pieter", "Vries", "Jansen", "Marieke", "0612345678")
VALID_ONDERWIJSNUMMER = "100000004"  # weighted sum 5 modulo 11
BAD_CHECKSUM_ONDERWIJSNUMMER = "100000005"

Mutation = Callable[[etree._Element], None]


def _fixture() -> etree._Element:
    return etree.parse(str(FIXTURE)).getroot()


def _find(root: etree._Element, path: str) -> etree._Element:
    found = root.find("/".join(f"d:{step}" for step in path.split("/")), {"d": NS})
    assert found is not None, path
    return found


def _set(path: str, value: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        _find(root, path).text = value

    return mutate


def _remove(path: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        element = _find(root, path)
        element.getparent().remove(element)

    return mutate


def _all(*mutations: Mutation) -> Mutation:
    def mutate(root: etree._Element) -> None:
        for m in mutations:
            m(root)

    return mutate


def _rename(path: str, name: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        _find(root, path).tag = f"{{{NS}}}{name}"

    return mutate


def _inject(parent: str, tag: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        etree.SubElement(_find(root, parent), tag).text = "x"

    return mutate


def _copy_documents(count: int) -> Mutation:
    def mutate(root: etree._Element) -> None:
        lijst = _find(root, "overigdocumentlijst")
        for _ in range(count):
            lijst.append(etree.fromstring(etree.tostring(lijst[0])))

    return mutate


def _attachment(name: str, media_type: str, content: bytes) -> Mutation:
    return _all(
        _set("overigdocumentlijst/document/bestandsnaam", name),
        _set("overigdocumentlijst/document/mediatype", media_type),
        _set("overigdocumentlijst/document/bestandsinhoud", base64.b64encode(content).decode()),
    )


def _signature(position: int | None) -> Mutation:
    """A (content-free) ds:Signature at `position` among the root's children; None: last."""

    def mutate(root: etree._Element) -> None:
        signature = etree.Element(f"{{{DS_NS}}}Signature")
        if position is None:
            root.append(signature)
        else:
            root.insert(position, signature)

    return mutate


def _secret_contact(root: etree._Element) -> None:
    _set("leerling/communicatielijst/communicatie/nummer", "9999999999")(root)
    _set("leerling/communicatielijst/communicatie/geheim", "true")(root)


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutation
    expected: set[tuple[str, str]]  # (rule, path)
    options: dict[str, Any] = field(default_factory=dict)
    severity: Severity = Severity.ERROR


D = "/dossier"
INZ = f"{D}/inzage"
LL = f"{D}/leerling"
COMM = f"{LL}/communicatielijst/communicatie"
CAT = f"{D}/metadata/categorie_uitlevering"
DOC = f"{D}/overigdocumentlijst/document"

CASES = [
    # VOMBO-INZAGE
    Case(
        "no inzage block",
        _remove("inzage"),
        {("VOMBO-INZAGE", INZ), ("VOMBO-CATEGORIE", f"{CAT}/cat_ouderinzage")},
    ),
    Case("inzage false", _set("inzage/inzage", "false"), {("VOMBO-INZAGE", f"{INZ}/inzage")}),
    Case(
        "missing inzagedatum",
        _remove("inzage/inzagedatum"),
        {("VOMBO-INZAGE", f"{INZ}/inzagedatum")},
    ),
    Case(
        "inzagedatum in the future",
        _set("inzage/inzagedatum", "2025-03-02"),
        {("VOMBO-INZAGE", f"{INZ}/inzagedatum")},
    ),
    Case("missing akkoord", _remove("inzage/akkoord"), {("VOMBO-INZAGE", f"{INZ}/akkoord")}),
    Case(
        "dates with a time zone",
        _all(
            _set("inzage/inzagedatum", "2025-02-20+01:00"),
            _set("leerling/geboortedatum", "2009-05-14Z"),
        ),
        set(),
    ),
    # VOMBO-INZAGE-DATUM
    Case(
        "inzagedatum before aangemaakt",
        _set("inzage/inzagedatum", "2025-02-09"),
        {("VOMBO-INZAGE-DATUM", f"{INZ}/inzagedatum")},
    ),
    # VOMBO-TOESTEMMING
    Case(
        "toestemming Nee",
        _set("inzage/toestemming", "Nee"),
        {("VOMBO-TOESTEMMING", f"{INZ}/toestemming")},
    ),
    Case(
        "toestemming missing",
        _remove("inzage/toestemming"),
        {("VOMBO-TOESTEMMING", f"{INZ}/toestemming")},
    ),
    # VOMBO-TOESTEMMING-DOOR
    Case(
        "adult with door verzorger",
        _set("leerling/geboortedatum", "2005-01-01"),
        {("VOMBO-TOESTEMMING-DOOR", f"{INZ}/door")},
    ),
    Case(
        "minor with door leerling",
        _set("inzage/door", "leerling"),
        {("VOMBO-TOESTEMMING-DOOR", f"{INZ}/door")},
    ),
    Case("door missing", _remove("inzage/door"), {("VOMBO-TOESTEMMING-DOOR", f"{INZ}/door")}),
    Case("naam missing", _remove("inzage/naam"), {("VOMBO-TOESTEMMING-DOOR", f"{INZ}/naam")}),
    # VOMBO-ID
    Case("bad BSN elfproef", _set("leerling/bsn", "111222334"), {("VOMBO-ID", f"{LL}/bsn")}),
    Case(
        "valid onderwijsnummer",
        _all(
            _rename("leerling/bsn", "onderwijsnummer"),
            _set("leerling/onderwijsnummer", VALID_ONDERWIJSNUMMER),
        ),
        set(),
    ),
    Case(
        "onderwijsnummer with bad checksum",
        _all(
            _rename("leerling/bsn", "onderwijsnummer"),
            _set("leerling/onderwijsnummer", BAD_CHECKSUM_ONDERWIJSNUMMER),
        ),
        {("VOMBO-ID", f"{LL}/onderwijsnummer")},
        severity=Severity.WARNING,
    ),
    Case("no personal number", _remove("leerling/bsn"), {("VOMBO-ID", f"{LL}/bsn")}),
    # VOMBO-ADRES
    Case(
        "secret address with adreslijst",
        _all(_set("leerling/adresgeheim", "true"), _secret_contact),
        {("VOMBO-ADRES", f"{LL}/adreslijst")},
    ),
    Case(
        "secret address with a real phone number",
        _all(_set("leerling/adresgeheim", "true"), _remove("leerling/adreslijst")),
        {("VOMBO-ADRES", f"{COMM}/nummer"), ("VOMBO-ADRES", f"{COMM}/geheim")},
    ),
    Case(
        "secret address, placeholders",
        _all(_set("leerling/adresgeheim", "true"), _remove("leerling/adreslijst"), _secret_contact),
        set(),
    ),
    Case(
        "no address, not secret",
        _remove("leerling/adreslijst"),
        {("VOMBO-ADRES", f"{LL}/adreslijst")},
    ),
    # VOMBO-WARM
    Case(
        "contact needed without contacttelefoon",
        _remove("deel_b/warme_overdracht/contacttelefoon"),
        {("VOMBO-WARM", f"{D}/deel_b/warme_overdracht/contacttelefoon")},
    ),
    Case(
        "contact needed without contactpersoon",
        _remove("deel_b/warme_overdracht/contactpersoon"),
        {("VOMBO-WARM", f"{D}/deel_b/warme_overdracht/contactpersoon")},
    ),
    Case(
        "no contact needed",
        _all(
            _set("deel_b/warme_overdracht/contactnodig", "false"),
            _remove("deel_b/warme_overdracht/contacttelefoon"),
        ),
        set(),
    ),
    # VOMBO-RESULTAAT
    Case(
        "no exam result or promotion",
        _remove("leerling/examenresultaat"),
        {("VOMBO-RESULTAAT", f"{LL}/examenresultaat")},
    ),
    # VOMBO-VERZORGERS
    Case(
        "liable and minor without verzorger",
        _remove("leerling/verzorger"),
        {
            ("VOMBO-VERZORGERS", f"{LL}/verzorgersaansprakelijk"),
            ("VOMBO-VERZORGERS", f"{LL}/verzorger"),
        },
    ),
    Case(
        "minor without legal representative",
        _set("leerling/verzorger/wettigevertegenwoordiger", "false"),
        {("VOMBO-VERZORGERS", f"{LL}/verzorger")},
    ),
    # VOMBO-LOOPBAAN
    Case(
        "schooljaar not consecutive",
        _set("leerling/schoolloopbaanlijst/schoolloopbaan[1]/schooljaar", "2023-2025"),
        {("VOMBO-LOOPBAAN", f"{LL}/schoolloopbaanlijst/schoolloopbaan[1]/schooljaar")},
    ),
    Case(
        "career out of order",
        _all(
            _set("leerling/schoolloopbaanlijst/schoolloopbaan[1]/schooljaar", "2024-2025"),
            _set("leerling/schoolloopbaanlijst/schoolloopbaan[2]/schooljaar", "2023-2024"),
        ),
        {("VOMBO-LOOPBAAN", f"{LL}/schoolloopbaanlijst/schoolloopbaan[2]/schooljaar")},
    ),
    Case(
        "last school is not the sender",
        _set("leerling/schoolloopbaanlijst/schoolloopbaan[2]/vestigingscode", "01"),
        {("VOMBO-LOOPBAAN", f"{LL}/schoolloopbaanlijst/schoolloopbaan[2]/vestigingscode")},
    ),
    # VOMBO-OIN
    Case(
        "test OIN in production",
        _set("metadata/verzendendeschool/oin", "00000099121011000000"),
        {("VOMBO-OIN", f"{D}/metadata/verzendendeschool/oin")},
        {"production": True},
    ),
    Case(
        "test OIN outside production",
        _set("metadata/verzendendeschool/oin", "00000099121011000000"),
        set(),
    ),
    Case(
        "unregistered OIN prefix",
        _set("metadata/ontvangendeinstelling/oin", "12345678252211000000"),
        {("VOMBO-OIN", f"{D}/metadata/ontvangendeinstelling/oin")},
    ),
    # VOMBO-CATEGORIE
    Case(
        "cat_verzuim VERBODEN with verzuim",
        _set("metadata/categorie_uitlevering/cat_verzuim", "VERBODEN"),
        {("VOMBO-CATEGORIE", f"{D}/deel_b/verzuim")},
    ),
    Case(
        "cat_verzuim OPT-UIT without verzuim",
        _all(
            _set("metadata/categorie_uitlevering/cat_verzuim", "OPT-UIT"), _remove("deel_b/verzuim")
        ),
        set(),
    ),
    Case(
        "cat_vombo OPTIONEEL",
        _set("metadata/categorie_uitlevering/cat_vombo", "OPTIONEEL"),
        {("VOMBO-CATEGORIE", f"{CAT}/cat_vombo")},
    ),
    Case(
        "cat_bijlagedocs VERPLICHT without documents",
        _all(
            _set("metadata/categorie_uitlevering/cat_bijlagedocs", "VERPLICHT"),
            _remove("overigdocumentlijst"),
        ),
        {("VOMBO-CATEGORIE", f"{CAT}/cat_bijlagedocs")},
    ),
    # VOMBO-MINIMAAL
    Case(
        "geboorteplaats injected",
        _inject("leerling", f"{{{NS}}}geboorteplaats"),
        {("VOMBO-MINIMAAL", f"{LL}/geboorteplaats")},
    ),
    Case(
        "nationaliteit in another namespace",
        _inject("deel_a", "{urn:elsewhere}nationaliteit"),
        {("VOMBO-MINIMAAL", f"{D}/deel_a/nationaliteit")},
    ),
    Case(
        "geboortemaand in no namespace",
        _inject("leerling/verzorger", "geboortemaand"),
        {("VOMBO-MINIMAAL", f"{LL}/verzorger/geboortemaand")},
    ),
    # VOMBO-BIJLAGE
    Case(
        "attachment with wrong magic bytes",
        _attachment("a.pdf", "application/pdf", b"hello"),
        {("VOMBO-BIJLAGE", f"{DOC}/bestandsinhoud")},
    ),
    Case(
        "attachment with wrong extension",
        _set("overigdocumentlijst/document/bestandsnaam", "loopbaanportfolio.png"),
        {("VOMBO-BIJLAGE", f"{DOC}/bestandsnaam")},
    ),
    Case(
        "attachment extension in capitals",
        _set("overigdocumentlijst/document/bestandsnaam", "PORTFOLIO.PDF"),
        set(),
    ),
    Case(
        "attachment media type not allowed",
        _set("overigdocumentlijst/document/mediatype", "application/zip"),
        {("VOMBO-BIJLAGE", f"{DOC}/mediatype")},
    ),
    Case(
        "attachment too big",
        lambda root: None,
        {("VOMBO-BIJLAGE", f"{DOC}/bestandsinhoud")},
        {"limits": AttachmentLimits(max_bytes=64)},
    ),
    Case(
        "too many attachments",
        _copy_documents(2),
        {("VOMBO-BIJLAGE", f"{D}/overigdocumentlijst")},
        {"limits": AttachmentLimits(max_count=2)},
    ),
    Case(
        "attachments too big in total",
        _copy_documents(1),
        {("VOMBO-BIJLAGE", f"{D}/overigdocumentlijst")},
        {"limits": AttachmentLimits(max_total_bytes=150)},
    ),
    Case(
        "attachment bad base64",
        _set("overigdocumentlijst/document/bestandsinhoud", "JVBERi0x*A=="),
        {("VOMBO-BIJLAGE", f"{DOC}/bestandsinhoud")},
    ),
    Case(
        "text attachment",
        _attachment("notitie.TXT", "text/plain", "plain text, één regel\n".encode()),
        set(),
    ),
    Case(
        "text attachment with NUL",
        _attachment("notitie.txt", "text/plain", b"a\x00b"),
        {("VOMBO-BIJLAGE", f"{DOC}/bestandsinhoud")},
    ),
    Case(
        "text attachment not UTF-8",
        _attachment("notitie.txt", "text/plain", b"caf\xe9"),
        {("VOMBO-BIJLAGE", f"{DOC}/bestandsinhoud")},
    ),
    Case("png attachment", _attachment("foto.png", "image/png", b"\x89PNG\r\n\x1a\nrest"), set()),
    Case("jpeg attachment", _attachment("foto.jpeg", "image/jpeg", b"\xff\xd8\xff\xe0rest"), set()),
    # VOMBO-HANDTEKENING
    Case(
        "signature required but missing",
        lambda root: None,
        {("VOMBO-HANDTEKENING", f"{D}/Signature")},
        {"require_signature": True},
    ),
    Case(
        "signature not last",
        _signature(5),
        {("VOMBO-HANDTEKENING", f"{D}/Signature")},
        {"require_signature": True},
    ),
    Case(
        "two signatures",
        _all(_signature(None), _signature(None)),
        {("VOMBO-HANDTEKENING", f"{D}/Signature[2]")},
        {"require_signature": True},
    ),
    Case("signature last", _signature(None), set(), {"require_signature": True}),
]


# Mutations the closed schema rejects too (the profile must still report them, not crash).
SCHEMA_INVALID_CASES = {
    "no personal number",
    "no exam result or promotion",
    "geboorteplaats injected",
    "nationaliteit in another namespace",
    "geboortemaand in no namespace",
    "signature not last",
    "two signatures",
    "attachment bad base64",
}


def _check(case: Case) -> tuple[etree._Element, list[ProfileViolation]]:
    root = _fixture()
    case.mutate(root)
    return root, check_profile(root, today=TODAY, **case.options)


def test_fixture_passes() -> None:
    root = _fixture()
    assert validate(root) == []
    assert check_profile(root, today=TODAY) == []
    require_profile(root, today=TODAY)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case: Case) -> None:
    root, found = _check(case)
    if case.id not in SCHEMA_INVALID_CASES:  # the profile runs after the schema passed
        assert validate(root) == [], case.id
    assert {(v.rule, v.path) for v in found} == case.expected
    assert len(found) == len(case.expected)
    assert all(v.severity is case.severity for v in found)
    assert all(f"(rule {v.rule})" in v.message for v in found)


def test_every_rule_of_the_readme_is_covered() -> None:
    readme = (Path(__file__).resolve().parents[2] / "xsd" / "README.md").read_text()
    rules = set(re.findall(r"`(VOMBO-[A-Z-]+)`", readme))
    covered = {rule for case in CASES for rule, _ in case.expected}
    assert rules == covered


def test_lines_point_at_the_element() -> None:
    found = check_profile(_fixture_with(_set("inzage/toestemming", "Nee")), today=TODAY)
    assert [v.line for v in found] == [48]
    assert str(found[0]) == (
        "line 48 /dossier/inzage/toestemming VOMBO-TOESTEMMING: "
        "inzage/toestemming must be Ja (rule VOMBO-TOESTEMMING)"
    )


def _fixture_with(mutation: Mutation) -> etree._Element:
    root = _fixture()
    mutation(root)
    return root


def test_all_violations_at_once() -> None:
    root = _fixture_with(
        _all(
            _set("inzage/toestemming", "Nee"),
            _set("leerling/bsn", "111222334"),
            _remove("deel_b/warme_overdracht/contacttelefoon"),
            _set("overigdocumentlijst/document/mediatype", "application/zip"),
        )
    )
    found = check_profile(root, today=TODAY, require_signature=True)
    assert [v.rule for v in found] == [
        "VOMBO-TOESTEMMING",
        "VOMBO-ID",
        "VOMBO-WARM",
        "VOMBO-BIJLAGE",
        "VOMBO-HANDTEKENING",
    ]


def test_warnings_do_not_block() -> None:
    case = next(c for c in CASES if c.id == "onderwijsnummer with bad checksum")
    root, found = _check(case)
    assert found and errors(found) == []
    assert "(warning)" in str(found[0])
    require_profile(root, today=TODAY)


def test_require_profile_raises_with_every_violation() -> None:
    root = _fixture_with(
        _all(_set("inzage/toestemming", "Nee"), _remove("deel_b/warme_overdracht/contacttelefoon"))
    )
    with pytest.raises(ProfileRejected) as caught:
        require_profile(root, today=TODAY)
    exc = caught.value
    assert exc.rule == "VOMBO-TOESTEMMING"
    assert exc.field == "/dossier/inzage/toestemming"
    assert [v.rule for v in exc.violations] == ["VOMBO-TOESTEMMING", "VOMBO-WARM"]
    assert "2 profile rule violation(s)" in str(exc)
    assert exc.for_record("DOS-1").violations == exc.violations


def test_no_message_quotes_personal_data() -> None:
    for case in CASES:
        root, found = _check(case)
        # The mutated values too: a bad BSN is still a BSN.
        numbers = [e.text for e in root.iter(f"{{{NS}}}bsn", f"{{{NS}}}onderwijsnummer")]
        for v in found:
            for value in (*PERSONAL, *numbers):
                assert value not in str(v), (case.id, v)


def test_oversize_attachment_is_not_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    import binascii

    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded an attachment that is too big by its base64 length")

    monkeypatch.setattr(binascii, "a2b_base64", refuse)
    root = _fixture()
    found = check_profile(root, today=TODAY, limits=AttachmentLimits(max_bytes=10))
    assert [v.rule for v in found] == ["VOMBO-BIJLAGE"]


ALL_ELEMENTS = sum(1 for _ in _fixture().iter(tag=etree.Element)) - 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    removed=st.sets(st.integers(min_value=1, max_value=ALL_ELEMENTS), max_size=12),
    secret=st.booleans(),
    require_signature=st.booleans(),
)
def test_never_raises_when_elements_are_removed(
    removed: set[int], secret: bool, require_signature: bool
) -> None:
    root = _fixture()
    if secret:
        _set("leerling/adresgeheim", "true")(root)
    elements = list(root.iter(tag=etree.Element))
    for index in removed:
        element = elements[index]
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
    found = check_profile(root, today=TODAY, production=True, require_signature=require_signature)
    assert all(isinstance(v, ProfileViolation) for v in found)
    assert all(v.path.startswith("/dossier") for v in found)
