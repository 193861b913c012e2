"""Our XML schemas (xsd/) and their loader (overstap.xml.schemas)."""

from __future__ import annotations

import copy
import re
import shutil
import threading
from enum import StrEnum
from pathlib import Path

import pytest
from lxml import etree

from overstap.domain.dossier import Approver, JaNee, Uitslag
from overstap.domain.states import RegistrationStatus, SignalKind
from overstap.domain.student import Level
from overstap.errors import ConfigurationError
from overstap.xml import schemas
from overstap.xml.schemas import (
    DOCUMENT_TYPES,
    UNKNOWN_ROOT_RULE,
    XSD_DIR_ENV,
    SchemaViolation,
    UnknownDocumentType,
    redact,
    schema_for,
    schema_for_root,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / "xsd"
FIXTURES = ROOT / "tests" / "fixtures" / "xml"
OSO = ROOT.parent / "shared" / "reference" / "oso"

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
WSAM = "http://www.w3.org/2007/05/addressing/metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
D = "urn:overstap:dossier:1"
NS = {"d": D, "xs": XS, "wsdl": WSDL, "soap": SOAP}

FIXTURE_FOR = {
    "dossier": "dossier.xml",
    "status": "status.xml",
    "signal": "signal.xml",
    "receipt": "receipt.xml",
    "manifest": "manifest.xml",
}
WSDLS = {
    "dossier-service.wsdl": ("LeverDossier", "dossier", "urn:overstap:dossier:1"),
    "status-service.wsdl": ("MeldStatus", "statusmeldingen", "urn:overstap:status:1"),
    "signal-service.wsdl": ("LeverSignalen", "signaalbestand", "urn:overstap:signal:1"),
}


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _parse_bytes(data: bytes) -> etree._Element:
    return etree.fromstring(data, _parser())


def _fixture(name: str) -> etree._Element:
    return _parse_bytes((FIXTURES / name).read_bytes())


def _dossier() -> etree._Element:
    return _fixture("dossier.xml")


def _el(parent: etree._Element, path: str, ns: dict[str, str] | None = None) -> etree._Element:
    found = parent.find(path, ns or NS)
    assert found is not None, path
    return found


def _new(tag: str, text: str | None = None) -> etree._Element:
    element = etree.Element(f"{{{D}}}{tag}")
    element.text = text
    return element


def _rules(violations: list[SchemaViolation]) -> set[str]:
    return {v.rule for v in violations}


def _paths(violations: list[SchemaViolation]) -> set[str]:
    return {v.path for v in violations}


def _declared_element_names(xsd: Path) -> set[str]:
    """Every xs:element/@name in a schema file and the schemas it imports or includes."""
    names: set[str] = set()
    seen: set[Path] = set()
    todo = [xsd]
    while todo:
        path = todo.pop().resolve()
        if path in seen:
            continue
        seen.add(path)
        tree = etree.parse(str(path), _parser())
        names.update(tree.xpath("//xs:element/@name", namespaces=NS))
        for location in tree.xpath(
            "//xs:import/@schemaLocation | //xs:include/@schemaLocation", namespaces=NS
        ):
            todo.append(path.parent / location)
    return names


# --- the schemas compile ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCUMENT_TYPES))
def test_every_message_schema_compiles(name: str) -> None:
    assert isinstance(schema_for(name), etree.XMLSchema)


def test_every_xsd_file_compiles_on_its_own() -> None:
    files = sorted(XSD.glob("*.xsd"))
    assert {f.name for f in files} == {
        "overstap-types.xsd",
        # The reference SIS export (a school's data into the hub): used by its WSDL and tests,
        # not a message of the hub's own exchanges.
        "sis-export.xsd",
        *(d.file for d in DOCUMENT_TYPES.values()),
    }
    for path in files:
        etree.XMLSchema(etree.parse(str(path), _parser()))


def test_every_schema_is_qualified_and_in_our_namespace() -> None:
    for path in XSD.glob("*.xsd"):
        root = etree.parse(str(path), _parser()).getroot()
        assert root.get("elementFormDefault") == "qualified", path.name
        assert re.fullmatch(r"urn:overstap:[a-z]+(-[a-z]+)*:1", root.get("targetNamespace", "")), (
            path.name
        )


def test_a_schema_is_compiled_once_and_reused() -> None:
    assert schema_for("dossier") is schema_for("dossier")
    assert schema_for_root(_dossier())[1] is schema_for("dossier")


def test_an_unknown_schema_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown schema 'dosier'"):
        schema_for("dosier")


# --- WSDLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("wsdl", sorted(WSDLS))
def test_wsdl_is_well_formed_and_its_schemas_exist(wsdl: str) -> None:
    tree = etree.parse(str(XSD / wsdl), _parser())
    locations = tree.xpath("//xs:import/@schemaLocation", namespaces=NS)
    assert locations, "the WSDL imports our schemas"
    for location in locations:
        assert not re.match(r"[a-z]+:", location), "relative schemaLocation only"
        assert (XSD / location).is_file(), location


@pytest.mark.parametrize("wsdl", sorted(WSDLS))
def test_wsdl_is_soap11_document_literal_with_edukoppeling_actions(wsdl: str) -> None:
    operation, root, namespace = WSDLS[wsdl]
    tree = etree.parse(str(XSD / wsdl), _parser())
    binding = tree.find("wsdl:binding/soap:binding", NS)
    assert binding is not None
    assert binding.get("style") == "document"
    assert binding.get("transport") == "http://schemas.xmlsoap.org/soap/http"
    assert tree.xpath("//wsdl:binding//soap:body/@use", namespaces=NS) == ["literal", "literal"]
    # One Body child per message: every message has exactly one part, bound to an element.
    for message in tree.findall("wsdl:message", NS):
        parts = message.findall("wsdl:part", NS)
        assert len(parts) == 1 and parts[0].get("element"), message.get("name")
    request = tree.find(f"wsdl:message[@name='{operation}Request']/wsdl:part", NS)
    assert request is not None
    prefix, local = request.get("element").split(":")
    assert (request.nsmap[prefix], local) == (namespace, root)
    action = f"{namespace}:{operation}"
    soap_op = tree.find(f"wsdl:binding/wsdl:operation[@name='{operation}']/soap:operation", NS)
    assert soap_op is not None and soap_op.get("soapAction") == action
    port_op = tree.find(f"wsdl:portType/wsdl:operation[@name='{operation}']", NS)
    assert port_op is not None
    assert _el(port_op, "wsdl:input").get(f"{{{WSAM}}}Action") == action
    assert _el(port_op, "wsdl:output").get(f"{{{WSAM}}}Action") == action + "Response"


@pytest.mark.parametrize("wsdl", sorted(WSDLS))
def test_zeep_reads_the_wsdl_without_the_network(wsdl: str) -> None:
    zeep = pytest.importorskip("zeep")
    requests = pytest.importorskip("requests")

    class NoNetwork(requests.Session):
        def request(self, *args: object, **kwargs: object) -> object:
            raise AssertionError(f"network access: {args!r}")

    client = zeep.Client(str(XSD / wsdl), transport=zeep.transports.Transport(session=NoNetwork()))
    operation = WSDLS[wsdl][0]
    bound = client.service._binding._operations[operation]
    assert bound.soapaction == f"{WSDLS[wsdl][2]}:{operation}"


# --- valid examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE_FOR))
def test_the_example_of_each_message_type_is_valid(name: str) -> None:
    root = _fixture(FIXTURE_FOR[name])
    assert schema_for_root(root)[0] == name
    assert validate(root) == []
    assert validate(root, name) == []
    assert validate(etree.ElementTree(root)) == []


def test_a_rejected_receipt_with_errors_is_valid() -> None:
    assert validate(_fixture("receipt-rejected.xml")) == []


def test_a_dossier_with_a_secret_address_and_an_onderwijsnummer_is_valid() -> None:
    root = _dossier()
    leerling = _el(root, "d:leerling")
    _el(leerling, "d:adresgeheim").text = "true"
    leerling.remove(_el(leerling, "d:adreslijst"))
    comm = _el(leerling, "d:communicatielijst/d:communicatie")
    _el(comm, "d:nummer").text = "9999999999"
    _el(comm, "d:geheim").text = "true"
    bsn = _el(leerling, "d:bsn")
    bsn.tag = f"{{{D}}}onderwijsnummer"
    bsn.text = "101234564"
    assert validate(root) == []


def test_a_dossier_with_promotion_instead_of_an_exam_is_valid() -> None:
    root = _dossier()
    leerling = _el(root, "d:leerling")
    exam = _el(leerling, "d:examenresultaat")
    bevorderd = _new("bevorderd")
    bevorderd.extend([_new("leerjaar", "2"), _new("besluit", "true")])
    bevorderd.append(_new("datumbesluit", "2025-06-30"))
    leerling.replace(exam, bevorderd)
    assert validate(root) == []


def test_an_enveloped_signature_is_allowed_as_the_last_child_only() -> None:
    root = _dossier()
    signature = etree.SubElement(root, f"{{{DS}}}Signature")
    etree.SubElement(signature, f"{{{DS}}}SignedInfo")
    assert validate(root) == []
    root.insert(0, copy.deepcopy(signature))
    assert validate(root) != []


def test_an_element_of_another_namespace_is_not_a_signature() -> None:
    root = _dossier()
    etree.SubElement(root, "{urn:example:other}extra")
    assert _rules(validate(root)) == {"SCHEMAV_ELEMENT_CONTENT"}


# --- data minimisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("forbidden", ["geboorteplaats", "nationaliteit", "geboortemaand"])
def test_birthplace_nationality_and_birth_month_are_rejected(forbidden: str) -> None:
    root = _dossier()
    leerling = _el(root, "d:leerling")
    # Where OSO puts them: before the personal number.
    _el(leerling, "d:bsn").addprevious(_new(forbidden, "Amsterdam"))
    violations = validate(root)
    assert len(violations) == 1
    (violation,) = violations
    assert violation.rule == "SCHEMAV_ELEMENT_CONTENT"
    assert violation.path == f"/dossier/leerling/{forbidden}"
    assert forbidden in violation.message and "not expected" in violation.message
    assert forbidden not in _declared_element_names(XSD / "dossier.xsd")


def test_the_content_models_are_closed() -> None:
    root = _dossier()
    _el(root, "d:deel_b/d:verzuim").addnext(_new("diagnose", "ADHD"))
    violations = validate(root)
    assert _paths(violations) == {"/dossier/deel_b/diagnose"}


def test_the_signal_schema_cannot_carry_support_needs_advice_or_motivation() -> None:
    names = _declared_element_names(XSD / "signal.xsd")
    assert names, "the signal schema declares elements"
    for word in ("ondersteuning", "advies", "motivatie", "mentor", "verzuim", "deel_", "examen"):
        assert not [n for n in names if word in n.lower()], word


def test_the_signal_schema_rejects_a_support_element() -> None:
    root = _fixture("signal.xml")
    jongere = _el(root, "s:signaal/s:jongere", {"s": "urn:overstap:signal:1"})
    etree.SubElement(jongere, "{urn:overstap:signal:1}ondersteuningsbehoefte").text = "x"
    assert _rules(validate(root)) == {"SCHEMAV_ELEMENT_CONTENT"}


# --- exactly one identifier, exactly one result --------------------------------------------------


def test_both_bsn_and_onderwijsnummer_are_rejected() -> None:
    root = _dossier()
    _el(root, "d:leerling/d:bsn").addnext(_new("onderwijsnummer", "101234564"))
    violations = validate(root)
    assert _paths(violations) == {"/dossier/leerling/onderwijsnummer"}
    assert _rules(violations) == {"SCHEMAV_ELEMENT_CONTENT"}


def test_onderwijsnummer_before_bsn_is_rejected_too() -> None:
    root = _dossier()
    _el(root, "d:leerling/d:bsn").addprevious(_new("onderwijsnummer", "101234564"))
    assert _paths(validate(root)) == {"/dossier/leerling/bsn"}


def test_neither_bsn_nor_onderwijsnummer_is_rejected() -> None:
    root = _dossier()
    leerling = _el(root, "d:leerling")
    leerling.remove(_el(leerling, "d:bsn"))
    violations = validate(root)
    assert len(violations) == 1
    assert violations[0].path == "/dossier/leerling/leerlingid"
    assert "onderwijsnummer" in violations[0].message and "bsn" in violations[0].message


def test_a_bsn_pattern_violation_names_line_path_and_rule_but_not_the_value() -> None:
    text = (FIXTURES / "dossier.xml").read_text(encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "<bsn>" in row)
    bad = text.replace("<bsn>111222333</bsn>", "<bsn>11122233X</bsn>")
    violations = validate(_parse_bytes(bad.encode()))
    assert len(violations) == 1
    (violation,) = violations
    assert violation.line == line
    assert violation.path == "/dossier/leerling/bsn"
    assert violation.rule == "SCHEMAV_CVC_PATTERN_VALID"
    assert violation.domain == "SCHEMASV"
    assert violation.schema == "dossier"
    assert "11122233X" not in violation.message and "11122233X" not in str(violation)
    assert "[redacted]" in violation.message and "[0-9]{9}" in violation.message
    assert str(violation).startswith(f"line {line}: /dossier/leerling/bsn: ")


def test_exam_result_and_promotion_together_are_rejected() -> None:
    root = _dossier()
    exam = _el(root, "d:leerling/d:examenresultaat")
    bevorderd = _new("bevorderd")
    bevorderd.extend([_new("besluit", "true"), _new("datumbesluit", "2025-06-30")])
    exam.addprevious(bevorderd)
    violations = validate(root)
    assert _paths(violations) == {"/dossier/leerling/examenresultaat"}


def test_neither_exam_result_nor_promotion_is_rejected() -> None:
    root = _dossier()
    leerling = _el(root, "d:leerling")
    leerling.remove(_el(leerling, "d:examenresultaat"))
    violations = validate(root)
    assert len(violations) == 1
    assert "bevorderd" in violations[0].message and "examenresultaat" in violations[0].message


# --- other checks the schema makes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("d:metadata/d:aangemaakt", "2025-02-10T09:30:00"),  # no time zone
        ("d:metadata/d:overstap", "VOVO"),
        ("d:metadata/d:overstap", ""),
        ("d:metadata/d:gekozenopleiding/d:niveau", "5"),
        ("d:metadata/d:gekozenopleiding/d:crebo", "2518"),
        ("d:metadata/d:verzendendeschool/d:brincode", "12ab"),
        ("d:metadata/d:verzendendeschool/d:oin", "0000000712101100000"),
        ("d:leerling/d:adreslijst/d:adres/d:postcode", "7511SS"),
        ("d:leerling/d:adreslijst/d:adres/d:postcode", "0511AB"),
        ("d:leerling/d:gemeentecode", "0153"),
        ("d:leerling/d:schoolloopbaanlijst/d:schoolloopbaan/d:schooljaar", "2024/2025"),
        ("d:leerling/d:schoolloopbaanlijst/d:schoolloopbaan/d:leerweg", "mavo"),
        ("d:leerling/d:examenresultaat/d:examenuitslag", "gezakt"),
        ("d:inzage/d:toestemming", "ja"),
        ("d:inzage/d:door", "mentor"),
        ("d:deel_a/d:motivatie", "   "),
        ("d:deel_b/d:verzuim/d:urenongeoorloofd", "-1"),
        ("d:deel_b/d:warme_overdracht/d:contactemail", "geen e-mail"),
        ("d:overigdocumentlijst/d:document/d:bestandsnaam", "../../etc/passwd"),
        ("d:overigdocumentlijst/d:document/d:mediatype", "PDF"),
        ("d:overigdocumentlijst/d:document/d:bestandsinhoud", "not base64!"),
    ],
)
def test_a_malformed_value_is_rejected_at_its_path(path: str, value: str) -> None:
    root = _dossier()
    _el(root, path).text = value
    violations = validate(root)
    assert violations, f"{path}={value!r} was accepted"
    expected = "/dossier/" + "/".join(step.split(":")[1] for step in path.split("/"))
    expected = expected.replace("/schoolloopbaan/", "/schoolloopbaan[1]/")  # two in the example
    assert _paths(violations) == {expected}
    if value.strip():
        assert all(value not in v.message for v in violations)


def test_validate_reports_every_violation_at_once() -> None:
    root = _dossier()
    _el(root, "d:leerling/d:bsn").text = "12345"
    _el(root, "d:leerling/d:adreslijst/d:adres/d:postcode").text = "7511 AB"
    _el(root, "d:deel_b/d:verzuim/d:urengeoorloofd").text = "veel"
    violations = validate(root)
    assert _paths(violations) == {
        "/dossier/leerling/bsn",
        "/dossier/leerling/adreslijst/adres/postcode",
        "/dossier/deel_b/verzuim/urengeoorloofd",
    }
    assert all(v.line for v in violations)


def test_paths_index_repeated_siblings() -> None:
    root = _dossier()
    second = _el(root, "d:leerling/d:schoolloopbaanlijst").findall("d:schoolloopbaan", NS)[1]
    _el(second, "d:leerjaar").text = "7"
    assert _paths(validate(root)) == {
        "/dossier/leerling/schoolloopbaanlijst/schoolloopbaan[2]/leerjaar"
    }


def test_a_dossier_inside_a_soap_body_gets_paths_from_the_dossier() -> None:
    soap = "http://schemas.xmlsoap.org/soap/envelope/"
    envelope = etree.Element(f"{{{soap}}}Envelope", nsmap={"s": soap})
    body = etree.SubElement(envelope, f"{{{soap}}}Body")
    body.append(_dossier())
    dossier = body[0]
    _el(dossier, "d:leerling/d:bsn").text = "12345"
    assert _paths(validate(dossier)) == {"/dossier/leerling/bsn"}


def test_prefixed_documents_get_the_same_paths() -> None:
    text = (FIXTURES / "dossier.xml").read_text(encoding="utf-8")
    text = re.sub(r"<(/?)([a-z_]+)", r"<\1o:\2", text).replace('xmlns="', 'xmlns:o="')
    root = _parse_bytes(text.encode())
    assert validate(root) == []
    _el(root, "d:leerling/d:voornaam[2]").text = " "
    assert _paths(validate(root)) == {"/dossier/leerling/voornaam[2]"}


def test_the_manifest_refuses_duplicate_names_and_paths() -> None:
    root = _fixture("manifest.xml")
    ns = {"m": "urn:overstap:manifest:1"}
    first, second = root.findall("m:bestand", ns)
    _el(second, "m:naam", ns).text = _el(first, "m:naam", ns).text
    assert _rules(validate(root)) == {"SCHEMAV_CVC_IDC"}
    _el(second, "m:naam", ns).text = "../signalen.xml"
    assert _paths(validate(root)) == {"/manifest/bestand[2]/naam"}
    _el(second, "m:sha256", ns).text = "9F86D0" * 10 + "0000"
    violations = validate(root)
    assert [v.rule for v in violations] == ["SCHEMAV_CVC_PATTERN_VALID"] * 2
    assert _paths(violations) == {"/manifest/bestand[2]/naam", "/manifest/bestand[2]/sha256"}


def test_a_status_report_needs_the_legal_minimum() -> None:
    root = _fixture("status.xml")
    ns = {"s": "urn:overstap:status:1"}
    report = _el(root, "s:statusmelding", ns)
    report.remove(_el(report, "s:voschool", ns))
    report.remove(_el(report, "s:bsn", ns))
    violations = validate(root)
    assert violations
    assert all(v.path.startswith("/statusmeldingen/statusmelding[1]/") for v in violations)


# --- roots -----------------------------------------------------------------------------------------


def test_an_unknown_root_is_a_clear_error() -> None:
    root = _parse_bytes(
        b'<dossier xmlns="http://www.edustandaard.nl/oso_gegevensset/2019/dossier"/>'
    )
    with pytest.raises(UnknownDocumentType) as caught:
        schema_for_root(root)
    message = str(caught.value)
    assert "oso_gegevensset" in message and "urn:overstap:dossier:1" in message
    assert caught.value.rule == UNKNOWN_ROOT_RULE
    (violation,) = validate(root)
    assert violation.rule == UNKNOWN_ROOT_RULE and violation.path == "/dossier"
    assert violation.domain == "OVERSTAP"


def test_a_document_checked_against_the_wrong_schema_is_reported_not_raised() -> None:
    violations = validate(_fixture("receipt.xml"), "dossier")
    assert violations and violations[0].rule == "SCHEMAV_CVC_ELT_1"


# --- loader: location, no network, threads ---------------------------------------------------------


def test_the_schema_directory_can_be_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied = tmp_path / "xsd"
    shutil.copytree(XSD, copied)
    default = schema_for("status")
    monkeypatch.setenv(XSD_DIR_ENV, str(copied))
    assert schemas.xsd_dir() == copied.resolve()
    other = schema_for("status")
    assert other is not default and other is schema_for("status")
    assert validate(_fixture("status.xml")) == []


def test_a_missing_schema_directory_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(XSD_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigurationError, match="not found"):
        schema_for("receipt")


@pytest.mark.parametrize(
    "location",
    ["http://example.invalid/overstap-types.xsd", "../outside/overstap-types.xsd"],
)
def test_schemas_never_load_from_the_network_or_outside_their_directory(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = tmp_path / "xsd"
    inside.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(XSD / "overstap-types.xsd", outside / "overstap-types.xsd")
    text = (XSD / "receipt.xsd").read_text(encoding="utf-8")
    (inside / "receipt.xsd").write_text(
        text.replace('schemaLocation="overstap-types.xsd"', f'schemaLocation="{location}"')
    )
    monkeypatch.setenv(XSD_DIR_ENV, str(inside))
    with pytest.raises(ConfigurationError, match="refused to load") as caught:
        schema_for("receipt")
    assert location.split("/")[-1] in str(caught.value)


def test_concurrent_validations_keep_their_own_errors() -> None:
    good = _dossier()
    bad = _dossier()
    _el(bad, "d:leerling/d:bsn").text = "12345"
    results: list[tuple[bool, list[SchemaViolation]]] = []
    lock = threading.Lock()

    def work(valid: bool) -> None:
        for _ in range(25):
            found = validate(good if valid else bad)
            with lock:
                results.append((valid, found))

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200
    for valid, found in results:
        assert found == [] if valid else _paths(found) == {"/dossier/leerling/bsn"}


def test_redact_keeps_names_and_patterns_but_not_values() -> None:
    message = (
        "Element '{urn:overstap:dossier:1}bsn': [facet 'pattern'] The value '123' is not "
        "accepted by the pattern '[0-9]{9}'."
    )
    assert redact(message) == (
        "Element '{urn:overstap:dossier:1}bsn': [facet 'pattern'] The value [redacted] is not "
        "accepted by the pattern '[0-9]{9}'."
    )
    assert redact("Element 'x': 'maybe' is not a valid value of the atomic type 'xs:boolean'.") == (
        "Element 'x': [redacted] is not a valid value of the atomic type 'xs:boolean'."
    )


# --- the schema speaks the domain's language -------------------------------------------------------


def _enumeration(type_name: str) -> set[str]:
    tree = etree.parse(str(XSD / "overstap-types.xsd"), _parser())
    values = tree.xpath(
        f"//xs:simpleType[@name='{type_name}']//xs:enumeration/@value", namespaces=NS
    )
    assert values, type_name
    return set(values)


@pytest.mark.parametrize(
    ("type_name", "enum"),
    [
        ("RegistrationStatus", RegistrationStatus),
        ("SignalKind", SignalKind),
        ("Uitslag", Uitslag),
        ("Leerweg", Level),
        ("JaNeeOnbekend", JaNee),
        ("InzageDoor", Approver),
    ],
)
def test_code_lists_match_the_domain(type_name: str, enum: type[StrEnum]) -> None:
    assert _enumeration(type_name) == {member.value for member in enum}


# --- OSO compatibility -------------------------------------------------------------------------------

KEY_OSO_NAMES = {
    "metadata",
    "standaardversie",
    "validatieversie",
    "categorie_uitlevering",
    "overstap",
    "inzage",
    "inzagedatum",
    "akkoord",
    "toestemming",
    "leerling",
    "voornaam",
    "voorvoegsel",
    "achternaam",
    "roepnaam",
    "geboortedatum",
    "adresgeheim",
    "adreslijst",
    "adres",
    "postcode",
    "communicatielijst",
    "communicatie",
    "bsn",
    "onderwijsnummer",
    "leerlingid",
    "verzorger",
    "schoolloopbaanlijst",
    "schoolloopbaan",
    "schooljaar",
    "brincode",
    "vestigingscode",
    "bevorderd",
    "examenresultaat",
    "datumuitslag",
    "examenuitslag",
    "verzuim",
    "urenongeoorloofd",
    "contactnodig",
    "contactpersoon",
    "contacttelefoon",
    "contactemail",
    "overigdocumentlijst",
    "document",
    "bestandsnaam",
    "bestandsinhoud",
}


def _oso(name: str) -> Path:
    path = OSO / name
    if not path.is_file():
        pytest.skip(f"OSO reference {name} not available beside the repository")
    return path


def test_the_oso_example_dossier_is_well_formed_xml() -> None:
    tree = etree.parse(str(_oso("Voorbeelddossier_OV_VOVO_full.xml")), _parser())
    root = tree.getroot()
    assert etree.QName(root).localname == "dossier"
    # It is OSO's dossier, not ours: the loader says so instead of guessing.
    with pytest.raises(UnknownDocumentType):
        schema_for_root(root)


def test_key_oso_names_are_used_in_our_dossier_schema() -> None:
    example = etree.parse(str(_oso("Voorbeelddossier_OV_VOVO_full.xml")), _parser())
    in_example = {etree.QName(e).localname for e in example.iter() if isinstance(e.tag, str)}
    ours = _declared_element_names(XSD / "dossier.xsd")
    oso = _declared_element_names(_oso("OSO_gegevensset.xsd"))
    assert KEY_OSO_NAMES - ours == set()
    assert KEY_OSO_NAMES - oso == set()
    assert KEY_OSO_NAMES - in_example == {"onderwijsnummer"}  # the example has a bsn
    # What OSO has and the VO-MBO profile forbids.
    for forbidden in ("geboorteplaats", "nationaliteit", "geboortemaand"):
        assert forbidden in oso and forbidden not in ours
