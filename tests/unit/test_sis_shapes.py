"""The JSON and XML export shapes of docs/sis.md, rendered from students.jsonl records."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from lxml import etree

from overstap.region import generate_region
from overstap.region.sis_shapes import NAMESPACE, api_record, xml_export, xml_record
from overstap.xml.safe import parse_untrusted
from overstap.xml.schemas import xsd_dir

NS = f"{{{NAMESPACE}}}"


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    path = tmp_path_factory.mktemp("region")
    generate_region(path, students=300, seed=4)
    lines = (path / "students.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(xsd_dir() / "sis-export.xsd"), parser))


def _student(**changes: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "leerlingid": "816761",
        "school": "12AB00",
        "bsn": "111222333",
        "onderwijsnummer": "",
        "voornamen": "Sem Pieter",
        "roepnaam": "Sem",
        "voorvoegsel": "de",
        "achternaam": "Vries",
        "geboortedatum": "2009-05-14",
        "gemeente": "GM0153",
        "adres": {
            "straat": "Lindelaan",
            "huisnummer": "12A",
            "postcode": "7511AB",
            "plaats": "Enschede",
        },
        "adres_geheim": False,
        "contact": {"phone": "0612345678", "email": "sem@example.org"},
        "guardians": [
            {
                "voornamen": "Marieke Anna",
                "roepnaam": "Marieke",
                "voorvoegsel": "",
                "achternaam": "Jansen",
                "relation": "ouder",
                "phone": "0612345679",
                "email": "m@example.org",
            }
        ],
        "level": "vmbo_kb",
        "leerjaar": 4,
        "leaving_year": True,
        "scenario": {},
    }
    rec.update(changes)
    return rec


def test_api_record_is_the_documented_json_shape() -> None:
    assert api_record(_student(), "2026-10-01T12:00:00Z") == {
        "leerlingnummer": "816761",
        "naam": {
            "voornamen": "Sem Pieter",
            "roepnaam": "Sem",
            "tussenvoegsel": "de",
            "achternaam": "Vries",
        },
        "geboortedatum": "2009-05-14",
        "bsn": "111222333",
        "onderwijsnummer": None,
        "adresgeheim": False,
        "adres": {
            "straat": "Lindelaan",
            "huisnummer": "12",
            "toevoeging": "A",
            "postcode": "7511AB",
            "plaats": "Enschede",
        },
        "gemeentecode": "GM0153",
        "contact": {"telefoon": "0612345678", "email": "sem@example.org"},
        "opleiding": {"leerweg": "vmbo_kb", "leerjaar": 4, "examenjaar": True},
        "verzorgers": [
            {
                "voornaam": "Marieke",
                "tussenvoegsel": "",
                "achternaam": "Jansen",
                "relatie": "ouder",
                "telefoon": "0612345679",
                "email": "m@example.org",
            }
        ],
        "gewijzigd": "2026-10-01T12:00:00Z",
    }


def test_api_record_without_gewijzigd_secret_address_and_onderwijsnummer() -> None:
    shaped = api_record(
        _student(bsn="", onderwijsnummer="101234567", adres=None, adres_geheim=True, guardians=[])
    )
    assert "gewijzigd" not in shaped
    assert shaped["bsn"] is None and shaped["onderwijsnummer"] == "101234567"
    assert shaped["adres"] is None and shaped["adresgeheim"] is True
    assert shaped["gemeentecode"] == "GM0153"  # always there, also for a secret address
    assert shaped["verzorgers"] == []


def test_xml_record_has_the_json_names_and_nesting() -> None:
    element = xml_record(_student(), "2026-10-01T12:00:00Z")
    assert element.tag == NS + "leerling"
    assert [etree.QName(c).localname for c in element] == [
        "leerlingnummer",
        "naam",
        "geboortedatum",
        "bsn",
        "adresgeheim",
        "adres",
        "gemeentecode",
        "contact",
        "opleiding",
        "verzorgers",
        "gewijzigd",
    ]
    assert element.findtext(f"{NS}naam/{NS}tussenvoegsel") == "de"
    assert element.findtext(f"{NS}adres/{NS}huisnummer") == "12"
    assert element.findtext(f"{NS}adres/{NS}toevoeging") == "A"
    assert element.findtext(f"{NS}adresgeheim") == "false"
    assert element.findtext(f"{NS}opleiding/{NS}examenjaar") == "true"
    assert element.findtext(f"{NS}opleiding/{NS}leerjaar") == "4"
    guardians = element.findall(f"{NS}verzorgers/{NS}verzorger")
    assert [g.findtext(f"{NS}voornaam") for g in guardians] == ["Marieke"]


def test_xml_record_leaves_out_what_is_null() -> None:
    element = xml_record(
        _student(bsn="", onderwijsnummer="101234567", adres=None, adres_geheim=True)
    )
    assert element.find(f"{NS}bsn") is None
    assert element.findtext(f"{NS}onderwijsnummer") == "101234567"
    assert element.find(f"{NS}adres") is None
    assert element.findtext(f"{NS}adresgeheim") == "true"
    assert element.find(f"{NS}gewijzigd") is None


def test_xml_export_of_a_region_is_valid_and_complete(
    records: list[dict[str, Any]], schema: etree.XMLSchema
) -> None:
    data = xml_export(records)
    root = parse_untrusted(data, require_utf8=True)
    assert schema.validate(root), schema.error_log
    assert root.tag == NS + "leerlingen"
    assert root.nsmap == {None: NAMESPACE}
    assert [e.text for e in root.iterfind(f"{NS}leerling/{NS}leerlingnummer")] == [
        r["leerlingid"] for r in records
    ]
    # One namespace declaration, on the root: the records do not repeat it.
    assert data.count(b"xmlns") == 1
    # The region has secret addresses and onderwijsnummers, so both optional paths are checked.
    assert any(r["adres"] is None for r in records)
    assert any(r["onderwijsnummer"] for r in records)


def test_xml_with_gewijzigd_is_valid_and_closed_content_refuses_extras(
    schema: etree.XMLSchema,
) -> None:
    root = etree.Element(NS + "leerlingen", nsmap={None: NAMESPACE})
    root.append(xml_record(_student(), "2026-10-01T12:00:00Z"))
    assert schema.validate(root), schema.error_log
    extra = copy.deepcopy(root)
    etree.SubElement(extra[0].find(f"{NS}naam"), NS + "bijnaam").text = "x"
    assert not schema.validate(extra)
    reordered = copy.deepcopy(root)
    leerling = reordered[0]
    leerling.insert(0, leerling.find(f"{NS}naam"))
    assert not schema.validate(reordered)


def test_house_number_split_follows_the_somtoday_dialect() -> None:
    for huisnummer, expected in [
        ("12", ("12", "")),
        ("180C", ("180", "C")),
        ("1001", ("1001", "")),
    ]:
        adres = {"straat": "s", "huisnummer": huisnummer, "postcode": "7511AB", "plaats": "p"}
        shaped = api_record(_student(adres=adres))["adres"]
        assert (shaped["huisnummer"], shaped["toevoeging"]) == expected


def test_shapes_are_pure(records: list[dict[str, Any]]) -> None:
    before = copy.deepcopy(records[:5])
    assert xml_export(records[:5]) == xml_export(records[:5])
    assert [api_record(r) for r in records[:5]] == [api_record(r) for r in records[:5]]
    assert records[:5] == before


def test_xml_export_is_utf8_with_declaration() -> None:
    data = xml_export([_student(achternaam="Çelik")])
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "Çelik".encode() in data
