"""The two SIS export dialects of a synthetic region: what a school's `leerlingen.csv` looks like.

They differ on purpose in everything real exports differ in (separator, encoding, byte-order
mark, date format, booleans, code lists, phone and postcode formatting, split house numbers, a
BSN that lost its leading zero), so the declarative mappings written for them are exercised
against both. docs/region.md describes every column; change both together.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GUARDIAN_SLOTS = 2  # exports carry two guardian column groups; a third guardian is dropped


@dataclass(frozen=True)
class SisDialect:
    name: str
    encoding: str  # Python codec name; "utf-8-sig" writes the byte-order mark
    delimiter: str
    date_format: str  # strftime pattern
    columns: tuple[str, ...]
    row: Callable[[dict[str, Any]], list[str]]

    def open_writer(self, stream: Any) -> Any:
        """A csv writer for a stream opened with `encoding` and newline=""."""
        return csv.writer(
            stream, delimiter=self.delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n"
        )


# --- magister-like: ';', UTF-8 with BOM, dd-mm-yyyy, J/N, bare CBS number ---------------------

MAGISTER_LEERWEG = {
    "vmbo_bb": "VMBO BB",
    "vmbo_kb": "VMBO KB",
    "vmbo_gl": "VMBO GL",
    "vmbo_tl": "VMBO TL",
    "havo": "HAVO",
    "vwo": "VWO",
    "pro": "PrO",
    "vso": "VSO",
}

_MAGISTER_GUARDIAN = (
    "Voornaam",
    "Tussenvoegsel",
    "Achternaam",
    "Relatie",
    "Telefoon",
    "E-mail",
)
MAGISTER_COLUMNS: tuple[str, ...] = (
    "Stamnr",
    "Roepnaam",
    "Voornamen",
    "Tussenvoegsel",
    "Achternaam",
    "Geb.datum",
    "BSN",
    "Onderwijsnummer",
    "Straat",
    "Huisnr",
    "Postcode",
    "Woonplaats",
    "Gemeentecode",
    "Adres geheim",
    "Telefoon",
    "E-mail",
    "Leerweg",
    "Leerjaar",
    "Examenjaar",
    *(f"Verzorger{n} {c}" for n in range(1, GUARDIAN_SLOTS + 1) for c in _MAGISTER_GUARDIAN),
)


def _dmy(iso: str) -> str:
    return f"{iso[8:10]}-{iso[5:7]}-{iso[0:4]}"


def _magister_phone(phone: str) -> str:
    # Magister users type the area separator: 06-12345678.
    return f"{phone[:2]}-{phone[2:]}" if phone else ""


def magister_row(rec: dict[str, Any]) -> list[str]:
    adres = rec["adres"] or {}
    postcode = adres.get("postcode", "")
    row = [
        rec["leerlingid"],
        rec["roepnaam"],
        rec["voornamen"],
        rec["voorvoegsel"],
        rec["achternaam"],
        _dmy(rec["geboortedatum"]),
        rec["bsn"],
        rec["onderwijsnummer"],
        adres.get("straat", ""),
        adres.get("huisnummer", ""),
        f"{postcode[:4]} {postcode[4:]}" if postcode else "",  # written with a space
        adres.get("plaats", ""),
        rec["gemeente"][2:],  # bare CBS number: 0363
        "J" if rec["adres_geheim"] else "N",
        _magister_phone(rec["contact"]["phone"]),
        rec["contact"]["email"],
        MAGISTER_LEERWEG[rec["level"]],
        str(rec["leerjaar"]),
        "J" if rec["leaving_year"] else "N",
    ]
    for g in _guardian_slots(rec):
        if g is None:
            row += [""] * len(_MAGISTER_GUARDIAN)
        else:
            row += [
                g["roepnaam"],
                g["voorvoegsel"],
                g["achternaam"],
                g["relation"],
                _magister_phone(g["phone"]),
                g["email"],
            ]
    return row


# --- somtoday-like: ',', Windows-1252, yyyy-mm-dd, true/false, GM code, split house number -----

SOMTODAY_LEERWEG = {
    "vmbo_bb": "vmbo-b",
    "vmbo_kb": "vmbo-k",
    "vmbo_gl": "vmbo-gl",
    "vmbo_tl": "vmbo-t",
    "havo": "havo",
    "vwo": "vwo",
    "pro": "pro",
    "vso": "vso",
}

_SOMTODAY_GUARDIAN = ("Voornaam", "Voorvoegsel", "Achternaam", "Relatie", "Telefoon", "Email")
SOMTODAY_COLUMNS: tuple[str, ...] = (
    "leerlingnummer",
    "voornamen",
    "roepnaam",
    "voorvoegsel",
    "achternaam",
    "geboortedatum",
    "bsn",
    "onderwijsnummer",
    "straatnaam",
    "huisnummer",
    "huisnummerToevoeging",
    "postcode",
    "woonplaats",
    "gemeentecode",
    "adresGeheim",
    "telefoonnummer",
    "emailadres",
    "leerweg",
    "leerjaar",
    "examenkandidaat",
    *(f"verzorger{n}{c}" for n in range(1, GUARDIAN_SLOTS + 1) for c in _SOMTODAY_GUARDIAN),
)


def _international(phone: str) -> str:
    # SOMtoday stores numbers in E.164 form: 0612345678 -> +31612345678.
    return "+31" + phone[1:] if phone else ""


def _split_huisnummer(huisnummer: str) -> tuple[str, str]:
    digits = huisnummer.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return digits, huisnummer[len(digits) :]


def somtoday_row(rec: dict[str, Any]) -> list[str]:
    adres = rec["adres"] or {}
    nummer, toevoeging = _split_huisnummer(adres.get("huisnummer", ""))
    bsn = rec["bsn"]
    row = [
        rec["leerlingid"],
        rec["voornamen"],
        rec["roepnaam"],
        rec["voorvoegsel"],
        rec["achternaam"],
        rec["geboortedatum"],
        # The export stores the BSN as a number: a leading zero is lost (Bsn.parse restores it).
        str(int(bsn)) if bsn else "",
        rec["onderwijsnummer"],
        adres.get("straat", ""),
        nummer,
        toevoeging,
        adres.get("postcode", ""),
        adres.get("plaats", ""),
        rec["gemeente"],
        "true" if rec["adres_geheim"] else "false",
        _international(rec["contact"]["phone"]),
        rec["contact"]["email"],
        SOMTODAY_LEERWEG[rec["level"]],
        str(rec["leerjaar"]),
        "true" if rec["leaving_year"] else "false",
    ]
    for g in _guardian_slots(rec):
        if g is None:
            row += [""] * len(_SOMTODAY_GUARDIAN)
        else:
            row += [
                g["roepnaam"],
                g["voorvoegsel"],
                g["achternaam"],
                g["relation"],
                _international(g["phone"]),
                g["email"],
            ]
    return row


def _guardian_slots(rec: dict[str, Any]) -> list[dict[str, Any] | None]:
    guardians: list[dict[str, Any] | None] = list(rec["guardians"][:GUARDIAN_SLOTS])
    return guardians + [None] * (GUARDIAN_SLOTS - len(guardians))


MAGISTER = SisDialect(
    name="magister",
    encoding="utf-8-sig",
    delimiter=";",
    date_format="%d-%m-%Y",
    columns=MAGISTER_COLUMNS,
    row=magister_row,
)
SOMTODAY = SisDialect(
    name="somtoday",
    encoding="cp1252",
    delimiter=",",
    date_format="%Y-%m-%d",
    columns=SOMTODAY_COLUMNS,
    row=somtoday_row,
)
DIALECTS: dict[str, SisDialect] = {d.name: d for d in (MAGISTER, SOMTODAY)}
