"""The VO-MBO profile rules that XSD 1.0 cannot express (xsd/README.md, "Profile rules").

`check_profile(root, today=...)` returns every violation at once, errors and warnings, roughly
in document order; `[]` means the dossier passes. It assumes a schema-valid document (run
`schemas.validate` first) but never raises on a schema-invalid one either: an element it needs
and cannot find or read is reported, or the rule that needs it is skipped.

Privacy: messages say what is expected and never quote a value, because a value may be a BSN,
a name or a birth date; `path` (`/dossier/leerling/bsn`, `[n]` for repeated siblings, the same
style as `SchemaViolation`) and `line` say where to look.

Speed (it runs once per outgoing dossier, next to signing): tags are qualified once at import;
the parents the rules read often (the root, inzage, leerling, ...) are indexed by child tag once
per call, the others are asked with `iterchildren(tag)`; the forbidden names are found by one
`iter(tags)` inside libxml2, and paths are computed only for violations. No XPath, no
ElementPath strings.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.domain.calendar import SchoolYear, age_on
from overstap.domain.dossier import ADULT_AGE, required_approver
from overstap.domain.errors import InvalidRecord
from overstap.domain.identifiers import Bsn, InvalidIdentifier, Oin, Onderwijsnummer
from overstap.domain.student import SECRET_EMAIL, SECRET_PHONE
from overstap.xml.schemas import _clean_path

NS = "urn:overstap:dossier:1"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_SIGNATURE = f"{{{DS_NS}}}Signature"

# The Logius test prefix (see identifiers.OIN_PREFIXES): valid everywhere except production.
TEST_OIN_PREFIX = "00000099"

# Data minimisation: these OSO fields must never travel, whatever namespace a sender puts them in.
FORBIDDEN_ELEMENTS = frozenset({"geboorteplaats", "nationaliteit", "geboortemaand"})

# mediatype -> (magic bytes or None for text/plain, allowed file name extensions)
MEDIA_TYPES: dict[str, tuple[bytes | None, tuple[str, ...]]] = {
    "application/pdf": (b"%PDF-", (".pdf",)),
    "image/png": (b"\x89PNG\r\n\x1a\n", (".png",)),
    "image/jpeg": (b"\xff\xd8\xff", (".jpg", ".jpeg")),
    "text/plain": (None, (".txt",)),
}

# Categories whose data is what a VO-MBO dossier is for: they must be VERPLICHT.
ALWAYS_REQUIRED_CATEGORIES = frozenset(
    {
        "cat_metadata",
        "cat_ouderinzage",
        "cat_leerling",
        "cat_schoolloopbaan",
        "cat_overstapadvies",
        "cat_vombo",
    }
)

# categorie_uitlevering -> the elements (as steps from the root) that carry its data.
CATEGORY_ELEMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "cat_metadata": (("metadata",),),
    "cat_ouderinzage": (("inzage",),),
    "cat_leerling": tuple(
        ("leerling", name)
        for name in (
            "voornaam",
            "voorvoegsel",
            "achternaam",
            "roepnaam",
            "geboortedatum",
            "adreslijst",
            "communicatielijst",
            "onderwijsnummer",
            "bsn",
            "leerlingid",
        )
    ),
    "cat_oudersverzorgers": (("leerling", "verzorger"), ("leerling", "verzorgersaansprakelijk")),
    "cat_schoolloopbaan": (("leerling", "schoolloopbaanlijst"),),
    "cat_overstapadvies": (("deel_b", "advies"), ("deel_b", "warme_overdracht")),
    "cat_onderwijsondersteuning": (
        ("deel_b", "ondersteuningsbehoefte"),
        ("deel_a", "gevraagde_ondersteuning"),
    ),
    "cat_verzuim": (("deel_b", "verzuim"),),
    "cat_vombo": (
        ("leerling", "examenresultaat"),
        ("leerling", "bevorderd"),
        ("deel_a", "motivatie"),
        ("deel_a", "studiekeuze"),
        ("deel_a", "ervaring"),
    ),
    "cat_bijlagedocs": (("overigdocumentlijst",),),
}


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class ProfileViolation:
    """One broken profile rule: which rule, where (element path and source line) and why."""

    rule: str
    path: str
    line: int | None
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "line ?"
        marker = " (warning)" if self.severity is Severity.WARNING else ""
        return f"{where} {self.path} {self.rule}{marker}: {self.message}"


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    """VOMBO-BIJLAGE limits; decoded sizes in bytes."""

    max_bytes: int = 10 * 1024 * 1024
    max_count: int = 20
    max_total_bytes: int = 25 * 1024 * 1024


DEFAULT_LIMITS = AttachmentLimits()


class ProfileRejected(InvalidRecord):
    """The dossier breaks at least one profile rule; `.violations` holds all of them."""

    def __init__(
        self,
        message: str,
        *,
        field: str,
        rule: str,
        record: str | None = None,
        violations: Sequence[ProfileViolation] = (),
    ) -> None:
        super().__init__(message, field=field, rule=rule, record=record)
        self.violations = list(violations)

    def for_record(self, record: str) -> ProfileRejected:
        return ProfileRejected(
            self.reason, field=self.field, rule=self.rule, record=record, violations=self.violations
        )


def errors(violations: Sequence[ProfileViolation]) -> list[ProfileViolation]:
    """The violations that stop a dossier (severity ERROR)."""
    return [v for v in violations if v.severity is Severity.ERROR]


def require_profile(
    root: etree._Element,
    *,
    today: date,
    production: bool = False,
    require_signature: bool = False,
) -> None:
    """Raise `ProfileRejected` (carrying every violation) when any profile rule is an ERROR."""
    found = check_profile(
        root, today=today, production=production, require_signature=require_signature
    )
    blocking = errors(found)
    if blocking:
        first = blocking[0]
        raise ProfileRejected(
            f"{len(blocking)} profile rule violation(s), first {first.rule} at {first.path}",
            field=first.path,
            rule=first.rule,
            violations=found,
        )


# ---------------------------------------------------------------------------------------------
# Reading the tree tolerantly: anything may be missing or unreadable in an invalid document.
#
# Speed matters here (one call per outgoing dossier, next to RSA signing). The costly parts were
# lxml calls, not the rules: every `iterchildren(tag=...)` builds an iterator and a tag matcher,
# and every element proxy and `.tag` string is created on access. So the tags are qualified once
# at import, a parent asked about several times is indexed once (`_index`, shared through
# `_Tree`), and the forbidden names are found by one `iter()` in C.


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


class _Tag:
    """Qualified tags (`{urn:overstap:dossier:1}name`, as lxml reports them), built once."""

    AANGEMAAKT = _q("aangemaakt")
    ADRESGEHEIM = _q("adresgeheim")
    ADRESLIJST = _q("adreslijst")
    AKKOORD = _q("akkoord")
    BESTANDSINHOUD = _q("bestandsinhoud")
    BESTANDSNAAM = _q("bestandsnaam")
    BEVORDERD = _q("bevorderd")
    BRINCODE = _q("brincode")
    BSN = _q("bsn")
    CATEGORIE_UITLEVERING = _q("categorie_uitlevering")
    COMMUNICATIE = _q("communicatie")
    COMMUNICATIELIJST = _q("communicatielijst")
    CONTACTNODIG = _q("contactnodig")
    CONTACTPERSOON = _q("contactpersoon")
    CONTACTTELEFOON = _q("contacttelefoon")
    DEEL_B = _q("deel_b")
    DOCUMENT = _q("document")
    DOOR = _q("door")
    EXAMENRESULTAAT = _q("examenresultaat")
    GEBOORTEDATUM = _q("geboortedatum")
    GEHEIM = _q("geheim")
    INZAGE = _q("inzage")  # the block under the root and its flag inside it
    INZAGEDATUM = _q("inzagedatum")
    LEERLING = _q("leerling")
    MEDIATYPE = _q("mediatype")
    METADATA = _q("metadata")
    NAAM = _q("naam")
    NUMMER = _q("nummer")
    ONDERWIJSNUMMER = _q("onderwijsnummer")
    ONTVANGENDEINSTELLING = _q("ontvangendeinstelling")
    OIN = _q("oin")
    OVERIGDOCUMENTLIJST = _q("overigdocumentlijst")
    SCHOOLJAAR = _q("schooljaar")
    SCHOOLLOOPBAAN = _q("schoolloopbaan")
    SCHOOLLOOPBAANLIJST = _q("schoolloopbaanlijst")
    SOORT = _q("soort")
    TOESTEMMING = _q("toestemming")
    VERZENDENDESCHOOL = _q("verzendendeschool")
    VERZORGER = _q("verzorger")
    VERZORGERSAANSPRAKELIJK = _q("verzorgersaansprakelijk")
    VESTIGINGSCODE = _q("vestigingscode")
    WARME_OVERDRACHT = _q("warme_overdracht")
    WETTIGEVERTEGENWOORDIGER = _q("wettigevertegenwoordiger")


# CATEGORY_ELEMENTS with qualified tags: (category, its tag in categorie_uitlevering, locations).
_CATEGORIES: tuple[tuple[str, str, tuple[tuple[str, ...], ...]], ...] = tuple(
    (category, _q(category), tuple(tuple(_q(step) for step in steps) for steps in locations))
    for category, locations in CATEGORY_ELEMENTS.items()
)

# `{*}name` matches the local name in any namespace and in none, like the closed XSD does.
_FORBIDDEN_ANY_NAMESPACE = tuple(f"{{*}}{name}" for name in sorted(FORBIDDEN_ELEMENTS))

# A parent's children by tag, each list in document order. Comments and processing instructions
# land under their (non-string) tag and are never asked for.
_Index = dict[str, list[etree._Element]]


def _index(parent: etree._Element | None) -> _Index:
    """One pass over the children of `parent` ({} when it is missing)."""
    index: _Index = {}
    if parent is not None:
        for child in parent:
            tag = child.tag
            if tag in index:
                index[tag].append(child)
            else:
                index[tag] = [child]
    return index


def _first(index: _Index, tag: str) -> etree._Element | None:
    found = index.get(tag)
    return found[0] if found else None


def _child(parent: etree._Element | None, tag: str) -> etree._Element | None:
    """The first child with `tag`; for a parent asked only once or twice (no index)."""
    if parent is None:
        return None
    return next(parent.iterchildren(tag), None)


class _Tree:
    """The child indexes of one dossier, each built on first use and shared by all rules.

    `steps` are qualified tags from the root; every step but the last follows the first match,
    so a missing or repeated parent behaves as `iterchildren(tag=...)` step by step would.
    """

    def __init__(self, root: etree._Element) -> None:
        self._indexes: dict[tuple[str, ...], _Index] = {(): _index(root)}

    def index(self, *steps: str) -> _Index:
        """The children of the element `steps` reach ({} when there is none)."""
        found = self._indexes.get(steps)
        if found is None:
            found = self._indexes[steps] = _index(self.first(*steps))
        return found

    def children(self, *steps: str) -> Sequence[etree._Element]:
        """Every element the steps reach (all matches of the last step); do not mutate."""
        return self.index(*steps[:-1]).get(steps[-1], ())

    def first(self, *steps: str) -> etree._Element | None:
        found = self.index(*steps[:-1]).get(steps[-1])
        return found[0] if found else None


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    text = element.text  # read once: lxml builds a new string on every access
    return (text.strip() or None) if text else None


_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}  # xs:boolean's lexical forms


def _bool(element: etree._Element | None) -> bool | None:
    return _BOOLEANS.get(_text(element) or "")


def _date(element: etree._Element | None) -> date | None:
    text = _text(element)
    if text is None:
        return None
    try:
        # xs:date may carry a time zone (2025-02-20+01:00); the calendar date is what counts.
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _date_of_datetime(element: etree._Element | None) -> date | None:
    """The calendar date an xs:dateTime names in its own zone."""
    text = _text(element)
    if text is None:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        return None


class _Report:
    """Collects violations; computes paths only for elements that are reported."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self.found: list[ProfileViolation] = []

    def path(self, element: etree._Element) -> str:
        return _clean_path(self.root, element)

    def at(
        self,
        rule: str,
        element: etree._Element,
        text: str,
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.found.append(
            ProfileViolation(
                rule,
                self.path(element),
                element.sourceline or None,
                f"{text} (rule {rule})",
                severity,
            )
        )

    def missing(self, rule: str, parent: etree._Element | str, name: str, text: str) -> None:
        """An absent element: the path it should have, no line."""
        base = parent if isinstance(parent, str) else self.path(parent)
        self.found.append(ProfileViolation(rule, f"{base}/{name}", None, f"{text} (rule {rule})"))


# ---------------------------------------------------------------------------------------------
# The rules


def check_profile(
    root: etree._Element,
    *,
    today: date,
    production: bool = False,
    require_signature: bool = False,
    limits: AttachmentLimits = DEFAULT_LIMITS,
) -> list[ProfileViolation]:
    """Every profile violation of a dossier (errors and warnings); `[]` when it passes."""
    report = _Report(root)
    tree = _Tree(root)
    # metadata has many children and the rules read four: direct lookups beat an index there.
    metadata = tree.first(_Tag.METADATA)
    school = _child(metadata, _Tag.VERZENDENDESCHOOL)  # for the OIN and the last career entry
    leerling = tree.first(_Tag.LEERLING)
    pupil = tree.index(_Tag.LEERLING)  # leerling's children: the rules read nearly all of them
    birth = _date(_first(pupil, _Tag.GEBOORTEDATUM))
    inzagedatum = _date(tree.first(_Tag.INZAGE, _Tag.INZAGEDATUM))
    minor_on_inzage = (
        birth is not None and inzagedatum is not None and age_on(birth, inzagedatum) < ADULT_AGE
    )

    _check_oin(report, school, _child(metadata, _Tag.ONTVANGENDEINSTELLING), production)
    _check_categories(report, tree, metadata)
    _check_inzage(report, tree, metadata, birth, inzagedatum, today)
    if leerling is not None:  # the XSD reports a missing leerling
        _check_id(report, leerling, pupil)
        _check_address(report, tree, leerling, pupil)
    _check_career(report, tree, school)
    if leerling is not None:
        _check_guardians(report, leerling, pupil, minor_on_inzage)
        _check_result(report, leerling, pupil)
    _check_warm(report, tree.first(_Tag.DEEL_B, _Tag.WARME_OVERDRACHT))
    _check_attachments(report, tree, limits)
    _check_minimal(report, root)
    if require_signature:
        _check_signature(report, root)
    return report.found


def _check_oin(
    report: _Report,
    school: etree._Element | None,
    institution: etree._Element | None,
    production: bool,
) -> None:
    """The OINs of metadata/verzendendeschool and metadata/ontvangendeinstelling."""
    for party, parent in (("verzendendeschool", school), ("ontvangendeinstelling", institution)):
        element = _child(parent, _Tag.OIN)
        if element is None:
            continue  # the XSD reports it; nothing to check here
        try:
            oin = Oin(_text(element) or "")
        except InvalidIdentifier:
            report.at(
                "VOMBO-OIN", element, f"{party}/oin must be 20 digits with a registered prefix"
            )
            continue
        if production and oin.value.startswith(TEST_OIN_PREFIX):
            report.at(
                "VOMBO-OIN",
                element,
                f"{party}/oin must not have the test prefix {TEST_OIN_PREFIX} in production",
            )


def _check_categories(report: _Report, tree: _Tree, metadata: etree._Element | None) -> None:
    rule = "VOMBO-CATEGORIE"
    block = _index(_child(metadata, _Tag.CATEGORIE_UITLEVERING))
    for category, tag, locations in _CATEGORIES:
        element = _first(block, tag)
        if element is None:
            continue  # the XSD requires every category
        value = _text(element)
        if value == "VERPLICHT":
            # One element of the category is enough: stop at the first location that has one.
            for steps in locations:
                if tree.children(*steps):
                    break
            else:
                report.at(rule, element, f"{category} is VERPLICHT but none of its data is present")
        elif category in ALWAYS_REQUIRED_CATEGORIES:
            # One report says it; checking its data against a wrong value would only add noise.
            report.at(rule, element, f"{category} must be VERPLICHT in the VO-MBO profile")
        elif value in ("VERBODEN", "OPT-UIT"):
            for steps in locations:
                for found in tree.children(*steps):
                    name = etree.QName(found).localname
                    report.at(rule, found, f"{name} is present but {category} is {value}")
        # Any other value (OPTIONEEL) allows the data either way: nothing to look up.


def _check_inzage(
    report: _Report,
    tree: _Tree,
    metadata: etree._Element | None,
    birth: date | None,
    datum: date | None,
    today: date,
) -> None:
    """`datum` is inzage/inzagedatum as a date (None when missing or unreadable)."""
    inzage = tree.first(_Tag.INZAGE)
    if inzage is None:
        # Without the block there is nothing to check toestemming or door against: one report.
        report.missing(
            "VOMBO-INZAGE", report.path(report.root), "inzage", "the inzage block is required"
        )
        return
    rule = "VOMBO-INZAGE"
    block = tree.index(_Tag.INZAGE)
    seen = _first(block, _Tag.INZAGE)
    if seen is None:
        report.missing(rule, inzage, "inzage", "inzage/inzage must be present and true")
    elif _bool(seen) is not True:
        report.at(rule, seen, "inzage/inzage must be true")
    datum_element = _first(block, _Tag.INZAGEDATUM)
    if datum_element is None:
        report.missing(rule, inzage, "inzagedatum", "inzage/inzagedatum must be present")
    elif datum is None:
        report.at(rule, datum_element, "inzage/inzagedatum must be a date")
    elif datum > today:
        report.at(rule, datum_element, "inzage/inzagedatum must not be after today")
    if _first(block, _Tag.AKKOORD) is None:
        report.missing(rule, inzage, "akkoord", "inzage/akkoord must be present")

    created = _date_of_datetime(_child(metadata, _Tag.AANGEMAAKT))
    if datum_element is not None and datum is not None and created is not None and datum < created:
        report.at(
            "VOMBO-INZAGE-DATUM",
            datum_element,
            "inzage/inzagedatum must not be before the date of metadata/aangemaakt",
        )

    toestemming = _first(block, _Tag.TOESTEMMING)
    if toestemming is None:
        report.missing(
            "VOMBO-TOESTEMMING", inzage, "toestemming", "inzage/toestemming must be present and Ja"
        )
    elif _text(toestemming) != "Ja":
        report.at("VOMBO-TOESTEMMING", toestemming, "inzage/toestemming must be Ja")

    rule = "VOMBO-TOESTEMMING-DOOR"
    if _first(block, _Tag.NAAM) is None:
        report.missing(rule, inzage, "naam", "inzage/naam (who gave toestemming) must be present")
    door = _first(block, _Tag.DOOR)
    if door is None:
        report.missing(rule, inzage, "door", "inzage/door must be present")
        return
    if birth is None or datum is None:
        return  # who should have approved depends on both dates
    required = required_approver(birth, datum)
    given = _text(door)
    if given != required.value:
        age = "under 18" if age_on(birth, datum) < ADULT_AGE else "18 or older"
        shown = given if given in ("verzorger", "leerling") else "not a known code"
        report.at(
            rule,
            door,
            f"inzage/door is {shown} but the student was {age} on inzagedatum; "
            f"door must be {required.value}",
        )


def _check_id(report: _Report, leerling: etree._Element, children: _Index) -> None:
    rule = "VOMBO-ID"
    numbers = [*children.get(_Tag.BSN, ()), *children.get(_Tag.ONDERWIJSNUMMER, ())]
    if not numbers:
        report.missing(rule, leerling, "bsn", "leerling needs a bsn or an onderwijsnummer")
        return
    if len(numbers) > 1:
        for extra in numbers[1:]:
            report.at(rule, extra, "leerling must have exactly one of bsn and onderwijsnummer")
        return
    number = numbers[0]
    text = _text(number) or ""
    if number.tag == _Tag.BSN:
        try:
            Bsn(text)
        except (
            InvalidIdentifier
        ) as exc:  # the reason names a position or the check, never the value
            report.at(rule, number, f"leerling/bsn {exc.reason}")
        return
    try:
        onr = Onderwijsnummer.parse(text, check_checksum=False)
    except InvalidIdentifier as exc:
        report.at(rule, number, f"leerling/onderwijsnummer {exc.reason}")
        return
    if not onr.checksum_ok:
        # The checksum is derived, not confirmed by an official source (DOMAIN.md): warn only.
        report.at(
            rule,
            number,
            "leerling/onderwijsnummer fails the checksum (weighted sum not 5 modulo 11)",
            Severity.WARNING,
        )


def _check_address(
    report: _Report, tree: _Tree, leerling: etree._Element, children: _Index
) -> None:
    rule = "VOMBO-ADRES"
    secret_element = _first(children, _Tag.ADRESGEHEIM)
    if secret_element is None:
        return  # the XSD reports it
    secret = _bool(secret_element)
    adreslijst = _first(children, _Tag.ADRESLIJST)
    if secret is False and adreslijst is None:
        report.missing(
            rule, leerling, "adreslijst", "adreslijst is required unless adresgeheim is true"
        )
    if secret is not True:
        return
    if adreslijst is not None:
        report.at(rule, adreslijst, "adreslijst must be absent when adresgeheim is true")
    for communicatie in tree.children(_Tag.LEERLING, _Tag.COMMUNICATIELIJST, _Tag.COMMUNICATIE):
        fields = _index(communicatie)
        soort = _text(_first(fields, _Tag.SOORT))
        placeholder = SECRET_PHONE if soort == "telefoon" else SECRET_EMAIL
        nummer = _first(fields, _Tag.NUMMER)
        if nummer is not None and _text(nummer) != placeholder:
            report.at(
                rule,
                nummer,
                f"communicatie/nummer must be the placeholder {placeholder} when adresgeheim is true",
            )
        geheim = _first(fields, _Tag.GEHEIM)
        if geheim is None:
            report.missing(
                rule,
                communicatie,
                "geheim",
                "communicatie/geheim must be true when adresgeheim is true",
            )
        elif _bool(geheim) is not True:
            report.at(rule, geheim, "communicatie/geheim must be true when adresgeheim is true")


def _check_career(report: _Report, tree: _Tree, school: etree._Element | None) -> None:
    """`school` is metadata/verzendendeschool."""
    rule = "VOMBO-LOOPBAAN"
    entries = tree.children(_Tag.LEERLING, _Tag.SCHOOLLOOPBAANLIJST, _Tag.SCHOOLLOOPBAAN)
    previous: SchoolYear | None = None
    for entry in entries:
        element = _child(entry, _Tag.SCHOOLJAAR)
        if element is None:
            continue
        try:
            year = SchoolYear.parse(_text(element) or "")
        except InvalidRecord:
            report.at(
                rule, element, "schoolloopbaan/schooljaar must be two consecutive years (Y-(Y+1))"
            )
            continue
        if previous is not None and year < previous:
            report.at(rule, element, "schoolloopbaan entries must be in chronological order")
        previous = year
    if not entries:
        return
    last = entries[-1]
    for name, tag in (("brincode", _Tag.BRINCODE), ("vestigingscode", _Tag.VESTIGINGSCODE)):
        expected = _text(_child(school, tag))
        element = _child(last, tag)
        if element is not None and expected is not None and _text(element) != expected:
            report.at(
                rule,
                element,
                f"the last schoolloopbaan/{name} must equal verzendendeschool/{name}",
            )


def _check_guardians(
    report: _Report, leerling: etree._Element, children: _Index, minor: bool
) -> None:
    rule = "VOMBO-VERZORGERS"
    guardians = children.get(_Tag.VERZORGER, ())
    liable = _first(children, _Tag.VERZORGERSAANSPRAKELIJK)
    if not guardians and liable is not None and _bool(liable) is True:
        report.at(
            rule, liable, "verzorgersaansprakelijk is true, so at least one verzorger is required"
        )
    if minor and not any(
        _bool(_child(g, _Tag.WETTIGEVERTEGENWOORDIGER)) is True for g in guardians
    ):
        report.missing(
            rule,
            leerling,
            "verzorger",
            "the student was under 18 on inzagedatum, so a verzorger with "
            "wettigevertegenwoordiger true is required",
        )


def _check_result(report: _Report, leerling: etree._Element, children: _Index) -> None:
    results = [*children.get(_Tag.EXAMENRESULTAAT, ()), *children.get(_Tag.BEVORDERD, ())]
    if not results:
        report.missing(
            "VOMBO-RESULTAAT",
            leerling,
            "examenresultaat",
            "leerling needs examenresultaat or bevorderd",
        )
    for extra in results[1:]:
        report.at(
            "VOMBO-RESULTAAT",
            extra,
            "leerling must have exactly one of examenresultaat and bevorderd",
        )


def _check_warm(report: _Report, warm: etree._Element | None) -> None:
    if warm is None or _bool(_child(warm, _Tag.CONTACTNODIG)) is not True:
        return
    for name, tag in (
        ("contactpersoon", _Tag.CONTACTPERSOON),
        ("contacttelefoon", _Tag.CONTACTTELEFOON),
    ):
        if _child(warm, tag) is None:
            report.missing(
                "VOMBO-WARM",
                warm,
                name,
                f"warme_overdracht/{name} is required when contactnodig is true",
            )


def _check_attachments(report: _Report, tree: _Tree, limits: AttachmentLimits) -> None:
    rule = "VOMBO-BIJLAGE"
    lijst = tree.first(_Tag.OVERIGDOCUMENTLIJST)
    documents = tree.children(_Tag.OVERIGDOCUMENTLIJST, _Tag.DOCUMENT)
    if lijst is None or not documents:
        return
    if len(documents) > limits.max_count:
        report.at(rule, lijst, f"overigdocumentlijst may hold at most {limits.max_count} documents")
    total = 0
    for document in documents:
        total += _check_attachment(report, document, limits)
    if total > limits.max_total_bytes:
        report.at(
            rule,
            lijst,
            f"attachments may total at most {limits.max_total_bytes} bytes decoded",
        )


def _check_attachment(report: _Report, document: etree._Element, limits: AttachmentLimits) -> int:
    """Checks one document; returns its decoded size (0 when unknown) for the total."""
    rule = "VOMBO-BIJLAGE"
    fields = _index(document)
    media_element = _first(fields, _Tag.MEDIATYPE)
    media_type = _text(media_element)
    expected = MEDIA_TYPES.get(media_type or "")
    if media_element is not None and expected is None:
        allowed = ", ".join(MEDIA_TYPES)
        report.at(rule, media_element, f"document/mediatype must be one of {allowed}")
    name_element = _first(fields, _Tag.BESTANDSNAAM)
    if expected is not None and name_element is not None:
        extensions = expected[1]
        if not (_text(name_element) or "").lower().endswith(extensions):
            report.at(
                rule,
                name_element,
                f"document/bestandsnaam must end in {' or '.join(extensions)} for {media_type}",
            )
    content_element = _first(fields, _Tag.BESTANDSINHOUD)
    if content_element is None:
        return 0
    encoded = "".join((content_element.text or "").split())
    size = _decoded_size(encoded)
    if size > limits.max_bytes:
        # Refused from the base64 length alone: an oversize attachment is never decoded.
        report.at(
            rule,
            content_element,
            f"document/bestandsinhoud may be at most {limits.max_bytes} bytes decoded",
        )
        return size
    try:
        data = binascii.a2b_base64(encoded, strict_mode=True)
    except binascii.Error:
        report.at(rule, content_element, "document/bestandsinhoud must be valid base64")
        return size
    if expected is not None and not _content_matches(data, expected[0]):
        report.at(rule, content_element, f"document/bestandsinhoud does not look like {media_type}")
    return len(data)


def _decoded_size(encoded: str) -> int:
    """Bytes that base64 text decodes to (exact for valid base64, an estimate otherwise)."""
    padding = len(encoded) - len(encoded.rstrip("="))
    return max(0, len(encoded) // 4 * 3 - min(padding, 2))


def _content_matches(data: bytes, magic: bytes | None) -> bool:
    if magic is not None:
        return data.startswith(magic)
    try:  # text/plain: UTF-8 text without NUL characters
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


def _check_minimal(report: _Report, root: etree._Element) -> None:
    # Defence in depth: the closed XSD already rejects these, in any namespace. libxml2 does the
    # walk and the name test; Python only sees the (normally zero) matches, in document order.
    for element in root.iter(*_FORBIDDEN_ANY_NAMESPACE):
        name = element.tag.rpartition("}")[2]
        report.at("VOMBO-MINIMAAL", element, f"{name} must not be sent (data minimisation)")


def _check_signature(report: _Report, root: etree._Element) -> None:
    rule = "VOMBO-HANDTEKENING"
    children = list(root.iterchildren(tag=etree.Element))
    signatures = [c for c in children if c.tag == _SIGNATURE]
    if not signatures:
        report.missing(
            rule, report.path(root), "Signature", "an enveloped ds:Signature is required"
        )
        return
    for extra in signatures[1:]:
        report.at(rule, extra, "exactly one ds:Signature is allowed")
    if children[-1] is not signatures[0] and len(signatures) == 1:
        report.at(rule, signatures[0], "ds:Signature must be the last child of dossier")


__all__ = [
    "DS_NS",
    "NS",
    "AttachmentLimits",
    "ProfileRejected",
    "ProfileViolation",
    "Severity",
    "check_profile",
    "errors",
    "require_profile",
]
