"""The VO-MBO profile rules that XSD 1.0 cannot express (xsd/README.md, "Profile rules").

`check_profile(root, today=...)` returns every violation at once, errors and warnings, roughly
in document order; `[]` means the dossier passes. It assumes a schema-valid document (run
`schemas.validate` first) but never raises on a schema-invalid one either: an element it needs
and cannot find or read is reported, or the rule that needs it is skipped.

Privacy: messages say what is expected and never quote a value, because a value may be a BSN,
a name or a birth date; `path` (`/dossier/leerling/bsn`, `[n]` for repeated siblings, the same
style as `SchemaViolation`) and `line` say where to look.

Speed: the checks walk the tree with `iterchildren(tag=...)` from the root (no XPath, no
ElementPath strings) plus one `iter()` over all elements for the forbidden names; paths are
computed only for violations.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator, Sequence
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


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _child(parent: etree._Element | None, name: str) -> etree._Element | None:
    if parent is None:
        return None
    return next(parent.iterchildren(tag=_q(name)), None)


def _children(parent: etree._Element | None, name: str) -> list[etree._Element]:
    if parent is None:
        return []
    return list(parent.iterchildren(tag=_q(name)))


def _text(element: etree._Element | None) -> str | None:
    if element is None or not element.text:
        return None
    return element.text.strip() or None


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
    metadata = _child(root, "metadata")
    inzage = _child(root, "inzage")
    leerling = _child(root, "leerling")
    birth = _date(_child(leerling, "geboortedatum"))
    inzagedatum = _date(_child(inzage, "inzagedatum"))
    minor_on_inzage = (
        birth is not None and inzagedatum is not None and age_on(birth, inzagedatum) < ADULT_AGE
    )

    _check_oin(report, metadata, production)
    _check_categories(report, root, metadata)
    _check_inzage(report, root, metadata, inzage, birth, today)
    _check_id(report, leerling)
    _check_address(report, leerling)
    _check_career(report, metadata, leerling)
    _check_guardians(report, leerling, minor_on_inzage)
    _check_result(report, leerling)
    _check_warm(report, _child(_child(root, "deel_b"), "warme_overdracht"))
    _check_attachments(report, _child(root, "overigdocumentlijst"), limits)
    _check_minimal(report, root)
    if require_signature:
        _check_signature(report, root)
    return report.found


def _check_oin(report: _Report, metadata: etree._Element | None, production: bool) -> None:
    for party in ("verzendendeschool", "ontvangendeinstelling"):
        element = _child(_child(metadata, party), "oin")
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


def _check_categories(
    report: _Report, root: etree._Element, metadata: etree._Element | None
) -> None:
    rule = "VOMBO-CATEGORIE"
    block = _child(metadata, "categorie_uitlevering")
    for category, locations in CATEGORY_ELEMENTS.items():
        element = _child(block, category)
        if element is None:
            continue  # the XSD requires every category
        value = _text(element)
        if category in ALWAYS_REQUIRED_CATEGORIES and value != "VERPLICHT":
            # One report says it; checking its data against a wrong value would only add noise.
            report.at(rule, element, f"{category} must be VERPLICHT in the VO-MBO profile")
            continue
        present = [found for steps in locations for found in _walk(root, steps)]
        if value == "VERPLICHT" and not present:
            report.at(rule, element, f"{category} is VERPLICHT but none of its data is present")
        elif value in ("VERBODEN", "OPT-UIT"):
            for found in present:
                name = etree.QName(found).localname
                report.at(rule, found, f"{name} is present but {category} is {value}")


def _walk(root: etree._Element, steps: tuple[str, ...]) -> Iterator[etree._Element]:
    """The elements reached from `root` by child steps (every match of the last step)."""
    parent: etree._Element | None = root
    for step in steps[:-1]:
        parent = _child(parent, step)
    yield from _children(parent, steps[-1])


def _check_inzage(
    report: _Report,
    root: etree._Element,
    metadata: etree._Element | None,
    inzage: etree._Element | None,
    birth: date | None,
    today: date,
) -> None:
    if inzage is None:
        # Without the block there is nothing to check toestemming or door against: one report.
        report.missing("VOMBO-INZAGE", report.path(root), "inzage", "the inzage block is required")
        return
    rule = "VOMBO-INZAGE"
    seen = _child(inzage, "inzage")
    if seen is None:
        report.missing(rule, inzage, "inzage", "inzage/inzage must be present and true")
    elif _bool(seen) is not True:
        report.at(rule, seen, "inzage/inzage must be true")
    datum_element = _child(inzage, "inzagedatum")
    datum = _date(datum_element)
    if datum_element is None:
        report.missing(rule, inzage, "inzagedatum", "inzage/inzagedatum must be present")
    elif datum is None:
        report.at(rule, datum_element, "inzage/inzagedatum must be a date")
    elif datum > today:
        report.at(rule, datum_element, "inzage/inzagedatum must not be after today")
    if _child(inzage, "akkoord") is None:
        report.missing(rule, inzage, "akkoord", "inzage/akkoord must be present")

    created = _date_of_datetime(_child(metadata, "aangemaakt"))
    if datum_element is not None and datum is not None and created is not None and datum < created:
        report.at(
            "VOMBO-INZAGE-DATUM",
            datum_element,
            "inzage/inzagedatum must not be before the date of metadata/aangemaakt",
        )

    toestemming = _child(inzage, "toestemming")
    if toestemming is None:
        report.missing(
            "VOMBO-TOESTEMMING", inzage, "toestemming", "inzage/toestemming must be present and Ja"
        )
    elif _text(toestemming) != "Ja":
        report.at("VOMBO-TOESTEMMING", toestemming, "inzage/toestemming must be Ja")

    rule = "VOMBO-TOESTEMMING-DOOR"
    if _child(inzage, "naam") is None:
        report.missing(rule, inzage, "naam", "inzage/naam (who gave toestemming) must be present")
    door = _child(inzage, "door")
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


def _check_id(report: _Report, leerling: etree._Element | None) -> None:
    if leerling is None:
        return  # the XSD reports a missing leerling
    rule = "VOMBO-ID"
    numbers = _children(leerling, "bsn") + _children(leerling, "onderwijsnummer")
    if not numbers:
        report.missing(rule, leerling, "bsn", "leerling needs a bsn or an onderwijsnummer")
        return
    if len(numbers) > 1:
        for extra in numbers[1:]:
            report.at(rule, extra, "leerling must have exactly one of bsn and onderwijsnummer")
        return
    number = numbers[0]
    text = _text(number) or ""
    if etree.QName(number).localname == "bsn":
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


def _check_address(report: _Report, leerling: etree._Element | None) -> None:
    rule = "VOMBO-ADRES"
    secret_element = _child(leerling, "adresgeheim")
    if leerling is None or secret_element is None:
        return  # the XSD reports it
    secret = _bool(secret_element)
    adreslijst = _child(leerling, "adreslijst")
    if secret is False and adreslijst is None:
        report.missing(
            rule, leerling, "adreslijst", "adreslijst is required unless adresgeheim is true"
        )
    if secret is not True:
        return
    if adreslijst is not None:
        report.at(rule, adreslijst, "adreslijst must be absent when adresgeheim is true")
    for communicatie in _children(_child(leerling, "communicatielijst"), "communicatie"):
        soort = _text(_child(communicatie, "soort"))
        placeholder = SECRET_PHONE if soort == "telefoon" else SECRET_EMAIL
        nummer = _child(communicatie, "nummer")
        if nummer is not None and _text(nummer) != placeholder:
            report.at(
                rule,
                nummer,
                f"communicatie/nummer must be the placeholder {placeholder} when adresgeheim is true",
            )
        geheim = _child(communicatie, "geheim")
        if geheim is None:
            report.missing(
                rule,
                communicatie,
                "geheim",
                "communicatie/geheim must be true when adresgeheim is true",
            )
        elif _bool(geheim) is not True:
            report.at(rule, geheim, "communicatie/geheim must be true when adresgeheim is true")


def _check_career(
    report: _Report, metadata: etree._Element | None, leerling: etree._Element | None
) -> None:
    rule = "VOMBO-LOOPBAAN"
    entries = _children(_child(leerling, "schoolloopbaanlijst"), "schoolloopbaan")
    previous: SchoolYear | None = None
    for entry in entries:
        element = _child(entry, "schooljaar")
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
    school = _child(metadata, "verzendendeschool")
    for name in ("brincode", "vestigingscode"):
        expected = _text(_child(school, name))
        element = _child(last, name)
        if element is not None and expected is not None and _text(element) != expected:
            report.at(
                rule,
                element,
                f"the last schoolloopbaan/{name} must equal verzendendeschool/{name}",
            )


def _check_guardians(report: _Report, leerling: etree._Element | None, minor: bool) -> None:
    if leerling is None:
        return
    rule = "VOMBO-VERZORGERS"
    guardians = _children(leerling, "verzorger")
    liable = _child(leerling, "verzorgersaansprakelijk")
    if not guardians and liable is not None and _bool(liable) is True:
        report.at(
            rule, liable, "verzorgersaansprakelijk is true, so at least one verzorger is required"
        )
    if minor and not any(_bool(_child(g, "wettigevertegenwoordiger")) is True for g in guardians):
        report.missing(
            rule,
            leerling,
            "verzorger",
            "the student was under 18 on inzagedatum, so a verzorger with "
            "wettigevertegenwoordiger true is required",
        )


def _check_result(report: _Report, leerling: etree._Element | None) -> None:
    if leerling is None:
        return
    results = _children(leerling, "examenresultaat") + _children(leerling, "bevorderd")
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
    if warm is None or _bool(_child(warm, "contactnodig")) is not True:
        return
    for name in ("contactpersoon", "contacttelefoon"):
        if _child(warm, name) is None:
            report.missing(
                "VOMBO-WARM",
                warm,
                name,
                f"warme_overdracht/{name} is required when contactnodig is true",
            )


def _check_attachments(
    report: _Report, lijst: etree._Element | None, limits: AttachmentLimits
) -> None:
    rule = "VOMBO-BIJLAGE"
    documents = _children(lijst, "document")
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
    media_element = _child(document, "mediatype")
    media_type = _text(media_element)
    expected = MEDIA_TYPES.get(media_type or "")
    if media_element is not None and expected is None:
        allowed = ", ".join(MEDIA_TYPES)
        report.at(rule, media_element, f"document/mediatype must be one of {allowed}")
    name_element = _child(document, "bestandsnaam")
    if expected is not None and name_element is not None:
        extensions = expected[1]
        if not (_text(name_element) or "").lower().endswith(extensions):
            report.at(
                rule,
                name_element,
                f"document/bestandsnaam must end in {' or '.join(extensions)} for {media_type}",
            )
    content_element = _child(document, "bestandsinhoud")
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
    # Defence in depth: the closed XSD already rejects these, in any namespace.
    for element in root.iter(tag=etree.Element):
        name = element.tag.rpartition("}")[2]
        if name in FORBIDDEN_ELEMENTS:
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
