"""Status messages -> reports: each statusmelding on its own; a bad one is refused with its
berichtid and rule, never with the personal number in the message."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from mappings.status_xml import Refused, reports
from overstap.domain.identifiers import Brin, Bsn, Onderwijsnummer
from overstap.domain.registration import StatusReport
from overstap.domain.states import RegistrationStatus
from overstap.xml.schemas import validate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xml" / "status.xml"


def _root(data: bytes | None = None) -> etree._Element:
    return etree.fromstring(data or FIXTURE.read_bytes())


def test_the_fixture_reads_as_two_reports() -> None:
    root = _root()
    assert validate(root) == []
    first, second = list(reports(root, sender=Brin("25MB")))
    assert isinstance(first, StatusReport) and isinstance(second, StatusReport)
    assert first.identifier == Bsn("111222333") and first.dossier_id == "DOS-2025-000123"
    assert first.status is RegistrationStatus.ONTVANGEN and first.sent_at.utcoffset() is not None
    assert isinstance(second.identifier, Onderwijsnummer) and second.dossier_id is None
    assert second.crebo is None and second.vo == Brin("34CD")


def test_a_bad_report_is_refused_alone_without_its_number() -> None:
    data = FIXTURE.read_bytes().replace(b"<bsn>111222333</bsn>", b"<bsn>111222334</bsn>")
    first, second = list(reports(_root(data)))
    assert isinstance(first, Refused) and isinstance(second, StatusReport)
    assert first.message_id == "urn:uuid:6f1c2b1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    assert first.error.rule == "BSN-ELFPROEF"
    assert "111222334" not in str(first.error)


def test_a_report_about_another_institution_than_the_sender_is_refused() -> None:
    results = list(reports(_root(), sender=Brin("99ZZ")))
    assert all(isinstance(r, Refused) and r.error.rule == "STATUS-SENDER" for r in results)
