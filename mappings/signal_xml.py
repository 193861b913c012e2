"""Signal files for a municipality (xsd/signal.xsd) and their CSV rendering for people.

Data minimisation by construction: the entries below hold only what DOMAIN.md allows a
municipality to receive (identity, date of birth, address, vo school, registration history,
kind and reason); there is no field for support needs, mentor or student text, guardians or
exam results, and the schema's closed content models would refuse them anyway.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.domain.identifiers import Bsn, Onderwijsnummer
from overstap.domain.states import RegistrationStatus, SignalKind

NS = "urn:overstap:signal:1"
_S = f"{{{NS}}}"


@dataclass(frozen=True, slots=True)
class Jongere:
    identifier: Bsn | Onderwijsnummer
    voornamen: str
    voorvoegsel: str
    achternaam: str
    roepnaam: str
    geboortedatum: date
    adres_geheim: bool
    address: tuple[str, str, str, str] | None  # straat, huisnummer, postcode, plaats
    gemeente: str  # of residence on the signal date

    def __repr__(self) -> str:  # never a name or number in a log line or traceback
        return "Jongere(<masked>)"


@dataclass(frozen=True, slots=True)
class SignalEntry:
    signal_ref: str
    kind: SignalKind
    school_year: str
    reason: str
    signal_date: date
    jongere: Jongere
    school_name: str
    school_location: str  # BRIN + vestiging
    history: tuple[
        tuple[str, RegistrationStatus, date], ...
    ]  # (mbo BRIN, status, date), oldest first


@dataclass(frozen=True, slots=True)
class WithdrawalEntry:
    signal_ref: str
    withdrawn_on: date
    reason: str


@dataclass(frozen=True, slots=True)
class FileHeader:
    file_id: str
    created: datetime
    gemeente: str
    regio: str
    school_year: str
    oin_hub: str


def _add(parent: etree._Element, name: str, text: str) -> etree._Element:
    child = etree.SubElement(parent, _S + name)
    child.text = text
    return child


def signal_document(
    header: FileHeader, signals: Sequence[SignalEntry], withdrawals: Sequence[WithdrawalEntry]
) -> etree._Element:
    """The `signaalbestand` (unsigned): the caller validates it and the hub signs it."""
    root = etree.Element(_S + "signaalbestand", nsmap={None: NS})
    kop = etree.SubElement(root, _S + "kop")
    _add(kop, "bestandid", header.file_id)
    _add(kop, "aangemaakt", header.created.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _add(kop, "gemeentecode", header.gemeente)
    _add(kop, "regiocode", header.regio)
    _add(kop, "schooljaar", header.school_year)
    _add(kop, "oinhub", header.oin_hub)
    for s in signals:
        el = etree.SubElement(root, _S + "signaal")
        _add(el, "signaalid", s.signal_ref)
        _add(el, "soort", s.kind.value)
        _add(el, "schooljaar", s.school_year)
        _add(el, "reden", s.reason)
        _add(el, "signaaldatum", s.signal_date.isoformat())
        j = s.jongere
        jongere = etree.SubElement(el, _S + "jongere")
        _add(
            jongere,
            "bsn" if isinstance(j.identifier, Bsn) else "onderwijsnummer",
            j.identifier.value,
        )
        for voornaam in j.voornamen.split():
            _add(jongere, "voornaam", voornaam)
        if j.voorvoegsel:
            _add(jongere, "voorvoegsel", j.voorvoegsel)
        _add(jongere, "achternaam", j.achternaam)
        if j.roepnaam:
            _add(jongere, "roepnaam", j.roepnaam)
        _add(jongere, "geboortedatum", j.geboortedatum.isoformat())
        _add(jongere, "adresgeheim", "true" if j.adres_geheim else "false")
        if not j.adres_geheim and j.address is not None:
            straat, nummer, postcode, plaats = j.address
            adres = etree.SubElement(jongere, _S + "adres")
            _add(adres, "straat", straat)
            _add(adres, "nummer", nummer)
            _add(adres, "postcode", postcode)
            _add(adres, "plaats", plaats)
        _add(jongere, "gemeentecode", j.gemeente)
        school = etree.SubElement(el, _S + "voschool")
        if s.school_name:
            _add(school, "naam", s.school_name)
        _add(school, "brincode", s.school_location[:4])
        _add(school, "vestigingscode", s.school_location[4:])
        if s.history:
            historie = etree.SubElement(el, _S + "inschrijvingshistorie")
            for brin, status, day in s.history:
                reg = etree.SubElement(historie, _S + "registratie")
                _add(reg, "brincode", brin)
                _add(reg, "status", status.value)
                _add(reg, "statusdatum", day.isoformat())
    for w in withdrawals:
        el = etree.SubElement(root, _S + "intrekking")
        _add(el, "signaalid", w.signal_ref)
        _add(el, "intrekkingsdatum", w.withdrawn_on.isoformat())
        _add(el, "reden", w.reason)
    return root


CSV_COLUMNS = (
    "regel", "signaalid", "soort", "schooljaar", "signaaldatum", "reden", "bsn",
    "onderwijsnummer", "voornamen", "voorvoegsel", "achternaam", "geboortedatum", "straat",
    "nummer", "postcode", "plaats", "gemeente", "school", "historie",
)  # fmt: skip


def signal_csv(signals: Sequence[SignalEntry], withdrawals: Sequence[WithdrawalEntry]) -> bytes:
    """The same file for people (UTF-8 with BOM and ';' so a spreadsheet opens it as is): one
    line per signal (`regel` signaal) and per withdrawal (`regel` intrekking)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for s in signals:
        j = s.jongere
        is_bsn = isinstance(j.identifier, Bsn)
        straat, nummer, postcode, plaats = (
            j.address if j.address is not None and not j.adres_geheim else ("", "", "", "")
        )
        history = ", ".join(f"{b} {st.value} {d.isoformat()}" for b, st, d in s.history)
        writer.writerow(
            ("signaal", s.signal_ref, s.kind.value, s.school_year, s.signal_date.isoformat(),
             s.reason, j.identifier.value if is_bsn else "", "" if is_bsn else j.identifier.value,
             j.voornamen, j.voorvoegsel, j.achternaam, j.geboortedatum.isoformat(), straat,
             nummer, postcode, plaats, j.gemeente, s.school_location, history)
        )  # fmt: skip
    for w in withdrawals:
        writer.writerow(
            ("intrekking", w.signal_ref, "", "", w.withdrawn_on.isoformat(), w.reason,
             *([""] * (len(CSV_COLUMNS) - 6)))
        )  # fmt: skip
    return ("\ufeff" + out.getvalue()).encode("utf-8")
