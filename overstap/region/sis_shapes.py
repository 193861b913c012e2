"""The JSON and XML export shapes of docs/sis.md, rendered from a region's `students.jsonl` record.

The reference REST and SOAP SIS servers (`connectors/reference/`) and the XML file exports
serve these shapes, so the `rest-json` and `xml-export` mappings are exercised against the same
students as the two CSV dialects of `overstap/region/sis.py`. Pure functions: no clock, no I/O.
`gewijzigd` is the serving SIS's own bookkeeping, so the caller passes it (file exports have none).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from overstap.region.sis import _split_huisnummer

NAMESPACE = "urn:overstap:sis-export:1"
_NS = f"{{{NAMESPACE}}}"


def api_record(rec: dict[str, Any], gewijzigd: str | None = None) -> dict[str, Any]:
    """One student in the JSON shape; `gewijzigd` (ISO timestamp) is added when given."""
    adres = rec["adres"]
    out: dict[str, Any] = {
        "leerlingnummer": rec["leerlingid"],
        "naam": {
            "voornamen": rec["voornamen"],
            "roepnaam": rec["roepnaam"],
            "tussenvoegsel": rec["voorvoegsel"],
            "achternaam": rec["achternaam"],
        },
        "geboortedatum": rec["geboortedatum"],
        # students.jsonl writes "" for the number a student does not have; the shape says null.
        "bsn": rec["bsn"] or None,
        "onderwijsnummer": rec["onderwijsnummer"] or None,
        "adresgeheim": rec["adres_geheim"],
        "adres": None if adres is None else _adres(adres),
        "gemeentecode": rec["gemeente"],
        "contact": {"telefoon": rec["contact"]["phone"], "email": rec["contact"]["email"]},
        "opleiding": {
            "leerweg": rec["level"],
            "leerjaar": rec["leerjaar"],
            "examenjaar": rec["leaving_year"],
        },
        "verzorgers": [
            {
                # A guardian's single first name is the name they go by, as in the CSV dialects.
                "voornaam": g["roepnaam"],
                "tussenvoegsel": g["voorvoegsel"],
                "achternaam": g["achternaam"],
                "relatie": g["relation"],
                "telefoon": g["phone"],
                "email": g["email"],
            }
            for g in rec["guardians"]
        ],
    }
    if gewijzigd is not None:
        out["gewijzigd"] = gewijzigd
    return out


def _adres(adres: dict[str, str]) -> dict[str, str]:
    nummer, toevoeging = _split_huisnummer(adres["huisnummer"])
    return {
        "straat": adres["straat"],
        "huisnummer": nummer,
        "toevoeging": toevoeging,
        "postcode": adres["postcode"],
        "plaats": adres["plaats"],
    }


def xml_record(rec: dict[str, Any], gewijzigd: str | None = None) -> etree._Element:
    """One `leerling` element: the JSON shape with the same names and nesting (docs/sis.md)."""
    element = etree.Element(_NS + "leerling", nsmap={None: NAMESPACE})
    _fill(element, api_record(rec, gewijzigd))
    return element


def _fill(element: etree._Element, value: Any) -> None:
    # SubElement keeps every descendant on the root's default namespace declaration; elements
    # built apart and appended would each carry a declaration of their own.
    if isinstance(value, dict):
        for key, child in value.items():
            if child is not None:  # null becomes an absent element: adres, bsn, onderwijsnummer
                _fill(etree.SubElement(element, _NS + key), child)
    elif isinstance(value, list):
        # The one list of the shape is verzorgers; its items are `verzorger` elements.
        item_name = etree.QName(element).localname.removesuffix("s")
        for item in value:
            _fill(etree.SubElement(element, _NS + item_name), item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = str(value)


def xml_export(recs: Iterable[dict[str, Any]]) -> bytes:
    """A whole `leerlingen` file export (no `gewijzigd`), UTF-8 with an XML declaration."""
    return bytes(etree.tostring(leerlingen_element(recs), xml_declaration=True, encoding="UTF-8"))


def leerlingen_element(
    recs: Iterable[dict[str, Any]], gewijzigd: dict[str, str] | None = None
) -> etree._Element:
    """The `leerlingen` element; `gewijzigd` maps leerlingid -> timestamp for a SIS that has one."""
    root = etree.Element(_NS + "leerlingen", nsmap={None: NAMESPACE})
    for rec in recs:
        root.append(xml_record(rec, None if gewijzigd is None else gewijzigd[rec["leerlingid"]]))
    return root


__all__ = ["NAMESPACE", "api_record", "leerlingen_element", "xml_export", "xml_record"]
