"""The dossier pipeline end to end: map, schema, profile, sign, encrypt; then the receiver's
side opens each payload with its key, verifies the signature strictly and reads the dossier
back. Run in-process and with two worker processes: the same verdicts, in input order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest
from dossier_samples import ENVELOPE, MBO, expected_after_round_trip, golden_cases
from lxml import etree

from mappings.dossier_xml import dossier_from_xml
from overstap.crypto import cms
from overstap.crypto.trust import TrustStore
from overstap.domain.dossier import Dossier, JaNee
from overstap.domain.identifiers import Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.pki.load import load_certificate, load_private_key
from overstap.services.dossier_pipeline import Outcome, PipelineConfig, process_dossiers
from overstap.services.pki import DEV_HUB_OIN
from overstap.xml.dsig import Verifier
from overstap.xml.safe import parse_untrusted

PASS = b"pipeline-test-passphrase"
HUB_OIN = Oin(DEV_HUB_OIN)  # the hub signs what it sends (ADR 6)
TODAY = date(2026, 3, 1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_dev_pki(
        tmp_path_factory.mktemp("pki"),
        [
            PartySpec(slug="hub", name="Overstap Hub", oin=HUB_OIN, kind="hub"),
            PartySpec(
                slug=f"mbo-{MBO}", name="Regio College Oost", oin=Oin.for_brin(MBO), kind="mbo"
            ),
        ],
        PASS,
    )


def refused() -> Dossier:
    d = golden_cases()["minor_guardian_exam"]
    assert d.inzage is not None
    return replace(d, dossier_id="DOS-REFUSED-1", inzage=replace(d.inzage, toestemming=JaNee.NEE))


def items() -> list[tuple[Dossier, object]]:
    cases = list(golden_cases().values())
    return [(d, ENVELOPE) for d in [*cases[:3], refused(), *cases[3:]]]


def open_payload(pki: PkiLayout, outcome: Outcome) -> Dossier:
    slug = f"mbo-{MBO}"
    recipient = cms.Recipient(
        load_certificate(pki.cert_path(slug, "enc")),
        load_private_key(pki.key_path(slug, "enc"), PASS),
    )
    assert outcome.payload is not None
    xml = cms.decrypt(outcome.payload, recipient, source=outcome.dossier_id)
    root = parse_untrusted(xml, source=outcome.dossier_id)
    verified = Verifier(TrustStore.from_pem_file(pki.trust_bundle_path)).verify(
        root, expected_oin=HUB_OIN, source=outcome.dossier_id
    )
    root.remove(root[-1])  # the signature, checked; the reader wants the dossier
    return dossier_from_xml(verified.root)[0]


@pytest.mark.parametrize("workers", [1, 2])
def test_payloads_open_verify_and_read_back_at_the_receiver(pki: PkiLayout, workers: int) -> None:
    config = PipelineConfig(pki.root, PASS, TODAY)
    given = items()
    outcomes = list(process_dossiers(given, config, workers=workers, chunk_size=2))
    assert [o.dossier_id for o in outcomes] == [d.dossier_id for d, _ in given]  # input order
    verdicts = {o.dossier_id: o for o in outcomes}
    bad = verdicts.pop("DOS-REFUSED-1")
    assert bad.payload is None and bad.rules == ("VOMBO-TOESTEMMING",)
    by_id = {d.dossier_id: d for d, _ in given}
    for dossier_id, outcome in verdicts.items():
        assert outcome.ok, outcome.problems
        assert outcome.payload is not None and b"<dossier" not in outcome.payload  # encrypted
        assert open_payload(pki, outcome) == expected_after_round_trip(by_id[dossier_id])


def test_a_dossier_that_cannot_be_written_is_refused_and_the_batch_goes_on(pki: PkiLayout) -> None:
    broken = replace(
        golden_cases()["adult_promotion"], dossier_id="DOS-NO-PART-A", student_part=None
    )
    given = [(broken, ENVELOPE), *items()[:2]]
    outcomes = list(process_dossiers(given, PipelineConfig(pki.root, PASS, TODAY), workers=1))
    assert [o.ok for o in outcomes] == [False, True, True]
    assert [str(p) for p in outcomes[0].problems] == [
        "/dossier/deel_a DOSSIER-PART-A: student part (A) is missing"
    ]


def test_input_is_read_as_the_workers_keep_up(pki: PkiLayout) -> None:
    pulled = 0
    base = items()[0]

    def endless() -> Iterator[tuple[Dossier, object]]:
        nonlocal pulled
        while True:
            pulled += 1
            yield base

    stream = process_dossiers(
        endless(), PipelineConfig(pki.root, PASS, TODAY), workers=2, chunk_size=4
    )
    first = next(stream)
    assert first.ok
    # 2 workers x 2 chunks in flight x 4 per chunk, plus the chunk being assembled.
    assert pulled <= 2 * 2 * 4 + 4
    stream.close()  # shuts the pool down


def test_signing_without_encryption_gives_plain_signed_xml(pki: PkiLayout) -> None:
    config = PipelineConfig(pki.root, PASS, TODAY, encrypt=False)
    [outcome] = process_dossiers(items()[:1], config, workers=1)
    assert outcome.payload is not None
    root = etree.fromstring(outcome.payload)
    assert root[-1].tag == "{http://www.w3.org/2000/09/xmldsig#}Signature"
