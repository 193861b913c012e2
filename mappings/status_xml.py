"""Registration status messages (`statusmeldingen`, xsd/status.xsd) -> `StatusReport`s.

Each `statusmelding` stands on its own (its own berichtid): a report that breaks a rule the
schema cannot express (the elfproef, a BRIN the sender may not speak for) is refused on its
own, with the rule and the berichtid for the receipt's `fout/betreft`, and the others go on.
The caller validates the document against the schema first and verifies its signature; the
sender's institution (from the certificate's OIN) decides which `mboinstelling` it may report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.domain.errors import InvalidRecord
from overstap.domain.identifiers import Brin, Bsn, Crebo, Onderwijsnummer
from overstap.domain.registration import StatusReport
from overstap.domain.states import RegistrationStatus

NS = "urn:overstap:status:1"
_T = f"{{{NS}}}"


@dataclass(frozen=True, slots=True)
class Refused:
    """A report that could not be taken: `message_id` for the receipt, the error for people."""

    message_id: str
    error: InvalidRecord


def _text(element: etree._Element, path: str) -> str:
    return (element.findtext(path) or "").strip()


def reports(
    root: etree._Element, *, sender: Brin | None = None
) -> Iterator[StatusReport | Refused]:
    """Every statusmelding as a report or a refusal, in document order.

    `sender`: the institution the message is authenticated as; a report about another
    institution is refused (SECURITY.md: a party speaks only for itself).
    """
    for index, item in enumerate(root.iterfind(f"{_T}statusmelding"), start=1):
        message_id = _text(item, f"{_T}berichtid") or f"statusmelding[{index}]"
        try:
            yield _report(item, message_id, sender)
        except InvalidRecord as exc:
            yield Refused(message_id, exc.for_record(message_id))


def _report(item: etree._Element, message_id: str, sender: Brin | None) -> StatusReport:
    mbo = Brin.parse(_text(item, f"{_T}mboinstelling/{_T}brincode"))
    if sender is not None and mbo != sender:
        raise InvalidRecord(
            "names another institution than the sender",
            field="mboinstelling/brincode",
            rule="STATUS-SENDER",
        )
    bsn = item.find(f"{_T}bsn")
    identifier: Bsn | Onderwijsnummer = (
        Bsn.parse(bsn.text or "", field_name="bsn")
        if bsn is not None
        # The checksum is a warning only (DOMAIN.md): the number itself is what identifies.
        else Onderwijsnummer(_text(item, f"{_T}onderwijsnummer"), check_checksum=False)
    )
    try:
        status = RegistrationStatus(_text(item, f"{_T}status"))
    except ValueError:
        raise InvalidRecord(
            "is not a registration status", field="status", rule="STATUS-UNKNOWN"
        ) from None
    try:
        sent_at = datetime.fromisoformat(_text(item, f"{_T}tijdstip").replace("Z", "+00:00"))
        status_date = date.fromisoformat(_text(item, f"{_T}statusdatum"))
    except ValueError:
        raise InvalidRecord(
            "tijdstip or statusdatum is not a valid moment/date",
            field="tijdstip",
            rule="STATUS-DATE",
        ) from None
    if sent_at.tzinfo is None:
        raise InvalidRecord("needs a time zone", field="tijdstip", rule="STATUS-DATE")
    crebo = _text(item, f"{_T}crebo")
    return StatusReport(
        message_id=message_id,
        sent_at=sent_at,
        mbo=mbo,
        vo=Brin.parse(_text(item, f"{_T}voschool/{_T}brincode")),
        identifier=identifier,
        status=status,
        status_date=status_date,
        leerlingid=_text(item, f"{_T}leerlingid"),
        dossier_id=_text(item, f"{_T}dossierid") or None,
        crebo=Crebo.parse(crebo) if crebo else None,
    )
