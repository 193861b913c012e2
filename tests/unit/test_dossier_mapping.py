"""Canonical dossier <-> XML: golden files, schema validity, round trip, code lists, refusals.

Golden files live in tests/golden/dossier/; after a deliberate change of the mapping, rewrite
them with `OVERSTAP_UPDATE_GOLDEN=1 make test` and review the diff like code.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from dossier_samples import ENVELOPE, dossier, expected_after_round_trip, golden_cases, student
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mappings.codelists import CODELISTS_FILE, codelists, parse_codelists
from mappings.dossier_xml import (
    NS,
    dossier_document,
    dossier_from_xml,
    dossier_to_bytes,
    dossier_to_xml,
)
from overstap.domain.dossier import Approver, JaNee, Uitslag
from overstap.domain.errors import ConfigurationError, InvalidRecord
from overstap.domain.student import SECRET_EMAIL, SECRET_PHONE, Level
from overstap.xml.schemas import validate

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dossier"
CASES = golden_cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_file(name: str) -> None:
    produced = dossier_to_bytes(CASES[name], ENVELOPE, pretty=True)
    path = GOLDEN / f"{name}.xml"
    if os.environ.get("OVERSTAP_UPDATE_GOLDEN") == "1":
        path.write_bytes(produced)
    assert path.exists(), f"{path} missing: run with OVERSTAP_UPDATE_GOLDEN=1 once"
    assert produced == path.read_bytes(), f"{name}: mapping output changed; see the diff"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_is_schema_valid_and_round_trips(name: str) -> None:
    original = CASES[name]
    root = etree.fromstring((GOLDEN / f"{name}.xml").read_bytes())
    assert validate(root) == []
    back, envelope = dossier_from_xml(root)
    assert envelope == ENVELOPE
    assert back == expected_after_round_trip(original)
    # And once more through the writer: a fixed point.
    assert dossier_to_bytes(back, envelope, pretty=True) == dossier_to_bytes(
        expected_after_round_trip(original), ENVELOPE, pretty=True
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_written_bytes_are_the_exclusive_c14n_of_the_tree(name: str) -> None:
    """The signer digests these bytes directly (ADR 5): they must be what c14n would produce."""
    doc = dossier_document(CASES[name], ENVELOPE)
    assert doc.canonical == etree.tostring(doc.root, method="c14n", exclusive=True)


def texts(root: etree._Element, name: str) -> list[str]:
    return [e.text for e in root.iter(f"{{{NS}}}{name}")]


def test_minor_guardian_shapes() -> None:
    root = dossier_to_xml(CASES["minor_guardian_exam"], ENVELOPE)
    assert texts(root, "door") == ["verzorger"]
    assert texts(root, "voornaam")[:2] == ["Noor", "Emma"]  # one element per first name
    assert texts(root, "wettigevertegenwoordiger") == ["true"]  # relation ouder -> legal
    assert texts(root, "examenuitslag") == ["geslaagd"]
    assert texts(root, "soortdiploma") == ["VMBO-KB"]
    assert texts(root, "urengeoorloofd") == ["12"]  # 14 absent, 2 of them unauthorised
    assert texts(root, "urenongeoorloofd") == ["2"]
    assert not texts(root, "bevorderd") and not texts(root, "onderwijsnummer")


def test_adult_promotion_shapes() -> None:
    root = dossier_to_xml(CASES["adult_promotion"], ENVELOPE)
    assert texts(root, "door") == ["leerling"]
    assert root.find(f".//{{{NS}}}bevorderd/{{{NS}}}besluit").text == "true"
    assert not texts(root, "examenresultaat") and not texts(root, "verzorger")
    cats = root.find(f".//{{{NS}}}categorie_uitlevering")
    assert cats.findtext(f"{{{NS}}}cat_oudersverzorgers") == "OPTIONEEL"  # no guardians


def test_onderwijsnummer_replaces_bsn() -> None:
    root = dossier_to_xml(CASES["onderwijsnummer"], ENVELOPE)
    assert texts(root, "onderwijsnummer") == ["101000000"]
    assert texts(root, "bsn") == []


def test_secret_address_carries_only_placeholders() -> None:
    d = CASES["secret_address"]
    real = dossier(student=student(address=None, adres_geheim=True))
    data = dossier_to_bytes(d, ENVELOPE)
    root = etree.fromstring(data)
    assert root.find(f".//{{{NS}}}adreslijst") is None
    assert set(texts(root, "nummer")) == {SECRET_PHONE, SECRET_EMAIL}
    assert set(texts(root, "geheim")) == {"true"}
    # Neither the student's nor a guardian's real contact may travel.
    for contact in (real.student.contact, *(g.contact for g in real.student.guardians)):
        assert contact.phone.encode() not in data
        assert contact.email.encode() not in data


def test_support_needs_and_attachment() -> None:
    root = dossier_to_xml(CASES["support_needs"], ENVELOPE)
    assert texts(root, "gevraagde_ondersteuning") == ["Hulp bij plannen."]
    assert texts(root, "ondersteuningsbehoefte")[0].startswith("Structuur")
    cats = root.find(f".//{{{NS}}}categorie_uitlevering")
    assert cats.findtext(f"{{{NS}}}cat_onderwijsondersteuning") == "VERPLICHT"
    assert cats.findtext(f"{{{NS}}}cat_bijlagedocs") == "VERPLICHT"
    assert texts(root, "mediatype") == ["application/pdf"]
    # Without support needs the category is optional, and no empty element is written.
    plain = dossier_to_xml(CASES["minor_guardian_exam"], ENVELOPE)
    assert texts(plain, "ondersteuningsbehoefte") == []
    assert plain.find(f".//{{{NS}}}cat_onderwijsondersteuning").text == "OPTIONEEL"


def test_warm_handover_contact() -> None:
    root = dossier_to_xml(CASES["warm_handover"], ENVELOPE)
    assert texts(root, "contactnodig") == ["true"]
    assert texts(root, "contactpersoon") == ["J. Smit (mentor)"]
    assert texts(root, "contacttelefoon") == ["053-1234567"]
    assert texts(root, "examenuitslag") == ["herexamen"]


def test_fixture_reads_and_rewrites_to_the_same_dossier() -> None:
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "xml" / "dossier.xml"
    d, envelope = dossier_from_xml(etree.parse(str(fixture)).getroot())
    assert d.student.address is not None and d.student.address.huisnummer == "12a"
    again, _ = dossier_from_xml(dossier_to_xml(d, envelope))
    assert again == d


# --- refusals name the field ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"student_part": None}, "deel_a", "DOSSIER-PART-A"),
        ({"mentor_part": None}, "deel_b", "DOSSIER-PART-B"),
        ({"result": None}, "resultaat", "DOSSIER-RESULT"),
        ({"school_career": ()}, "schoolloopbaan", "DOSSIER-CAREER"),
        ({"created": datetime(2026, 1, 12, 8, 45)}, "aangemaakt", "DATETIME-ZONE"),
    ],
)
def test_incomplete_dossier_is_refused(changes: dict[str, object], field: str, rule: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        dossier_to_xml(dossier(**changes), ENVELOPE)
    assert (info.value.field, info.value.rule, info.value.record) == (
        field,
        rule,
        "DOS-2025-000001",
    )


def test_control_character_is_refused_without_quoting() -> None:
    base = dossier()
    bad = replace(base, student_part=replace(base.student_part, motivation="geheim\x01tekst"))  # type: ignore[type-var]
    with pytest.raises(InvalidRecord) as info:
        dossier_to_xml(bad, ENVELOPE)
    assert info.value.field == "motivatie" and info.value.rule == "XML-CHARACTERS"
    assert "geheim" not in str(info.value)


@pytest.mark.parametrize("bad", ["\x00", "\x1b[31m", "\ufffe"])
def test_characters_xml_cannot_carry_name_the_field(bad: str) -> None:
    base = dossier()
    bad_advice = replace(base.mentor_part, advice=f"Goed{bad}")  # type: ignore[type-var]
    with pytest.raises(InvalidRecord) as info:
        dossier_to_xml(replace(base, mentor_part=bad_advice), ENVELOPE)
    assert (info.value.field, info.value.rule) == ("advies", "XML-CHARACTERS")


def test_markup_in_values_is_escaped_not_interpreted() -> None:
    base = dossier()
    tricky = replace(base.mentor_part, advice='<b>goed</b> & "ok" ]]> &amp;')  # type: ignore[type-var]
    root = dossier_to_xml(replace(base, mentor_part=tricky), ENVELOPE)
    assert texts(root, "advies") == ['<b>goed</b> & "ok" ]]> &amp;']
    assert validate(root) == []


def test_unauthorised_hours_above_total_is_refused() -> None:
    base = dossier()
    attendance = replace(base.mentor_part.attendance, absent_hours=1, unauthorised_absent_hours=3)  # type: ignore[union-attr]
    bad = replace(base, mentor_part=replace(base.mentor_part, attendance=attendance))  # type: ignore[type-var]
    with pytest.raises(InvalidRecord, match="DOSSIER-VERZUIM"):
        dossier_to_xml(bad, ENVELOPE)


# --- code lists are data, checked both ways ---------------------------------------------------


def enumeration(type_name: str) -> set[str]:
    tree = etree.parse(str(Path(__file__).resolve().parents[2] / "xsd" / "overstap-types.xsd"))
    xs = "http://www.w3.org/2001/XMLSchema"
    return {
        e.get("value")
        for e in tree.iterfind(
            f"{{{xs}}}simpleType[@name='{type_name}']/{{{xs}}}restriction/{{{xs}}}enumeration"
        )
    }


def test_code_lists_cover_the_model_and_stay_inside_the_schema() -> None:
    lists = codelists()
    assert set(lists.leerweg.to_code) == {m.value for m in Level}
    assert set(lists.leerweg.to_code.values()) <= enumeration("Leerweg")
    assert set(lists.examenuitslag.to_code) == {m.value for m in Uitslag}
    assert set(lists.examenuitslag.to_code.values()) <= enumeration("Uitslag")
    assert set(lists.inzage_door.to_code) == {m.value for m in Approver}
    assert set(lists.inzage_door.to_code.values()) <= enumeration("InzageDoor")
    assert set(lists.ja_nee.to_code) == {m.value for m in JaNee}
    assert set(lists.ja_nee.to_code.values()) <= enumeration("JaNeeOnbekend")
    values = {v for c in lists.categories.values() for v in (c.when_present, c.when_absent)}
    assert values <= enumeration("Categorie")
    assert codelists() is lists  # loaded once


def load_file() -> dict[str, object]:
    return yaml.safe_load(CODELISTS_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["leerweg"].pop("havo"), "no code for havo"),
        (lambda d: d["leerweg"].update({"mavo": "mavo"}), "does not know: mavo"),
        (lambda d: d["examenuitslag"].update({"herexamen": "geslaagd"}), "same code"),
        (lambda d: d["categorie_uitlevering"].pop("cat_verzuim"), "in that order"),
        (
            lambda d: d["categorie_uitlevering"]["cat_vombo"].update(when_present="MISSCHIEN"),
            "cat_vombo",
        ),
        (lambda d: d["wettige_vertegenwoordiger"].update(ouder="ja"), "true or false"),
        (lambda d: d.pop("ja_nee"), "ja_nee is missing"),
    ],
)
def test_broken_code_list_is_a_configuration_error(mutate: object, message: str) -> None:
    data = load_file()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match=message):
        parse_codelists(data)


def test_unknown_code_on_input_names_the_field() -> None:
    root = dossier_to_xml(dossier(), ENVELOPE)
    root.find(f".//{{{NS}}}leerweg").text = "mavo"
    with pytest.raises(InvalidRecord) as info:
        dossier_from_xml(root)
    assert (info.value.field, info.value.rule) == ("leerweg", "CODELIST-UNKNOWN")


# --- any text survives the trip ---------------------------------------------------------------

XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\t\n\r"),
    min_size=1,
    max_size=60,
).filter(lambda s: s.strip() and s == s.strip())


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(motivation=XML_TEXT, advice=XML_TEXT, surname=XML_TEXT, toelichting=XML_TEXT)
def test_free_text_round_trips(
    motivation: str, advice: str, surname: str, toelichting: str
) -> None:
    base = dossier()
    name = replace(base.student.name, achternaam=surname)
    d = replace(
        base,
        student=replace(base.student, name=name),
        student_part=replace(base.student_part, motivation=motivation),  # type: ignore[type-var]
        mentor_part=replace(
            base.mentor_part,  # type: ignore[type-var]
            advice=advice,
            attendance=replace(base.mentor_part.attendance, remarks=toelichting),  # type: ignore[union-attr]
        ),
    )
    back, _ = dossier_from_xml(etree.fromstring(dossier_to_bytes(d, ENVELOPE)))
    assert back == d
    doc = dossier_document(d, ENVELOPE)
    assert doc.canonical == etree.tostring(doc.root, method="c14n", exclusive=True)
