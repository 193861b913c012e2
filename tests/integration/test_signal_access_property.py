"""Access, as a property over generated regions (SECURITY.md, Access): every byte the hub queues
for municipality M concerns residents of M on the signal date only, and every young person at
risk is signalled to exactly one municipality - the one the region's own story says.

The files are read from the outbox (what transports send, byte for byte), decrypted and
verified. One encryption certificate stands in for every municipality: routing, not
cryptography, is under test here (tests/integration/test_signal_files.py opens each
municipality's files with its own key)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from region_year import region_hub, year_of_statuses
from sqlalchemy import insert, select

from overstap.crypto import cms
from overstap.crypto.trust import TrustStore
from overstap.domain.identifiers import Oin
from overstap.domain.signals import evaluation_window
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.pki.load import load_certificate, load_private_key
from overstap.ports import Route
from overstap.region import generate_region, iter_students, load_region
from overstap.services.delivery import save_municipality_routes
from overstap.services.pki import DEV_HUB_OIN, hub_signer
from overstap.services.reconcile import reconcile
from overstap.services.signal_files import XML_KIND, queue_signal_files
from overstap.services.signals import run_signals
from overstap.store import migrate
from overstap.store.engine import make_engine
from overstap.store.tables import outbox, residence, student
from overstap.xml.dsig import Verifier
from overstap.xml.safe import parse_untrusted

PASS = b"signal-access-property"
S = "{urn:overstap:signal:1}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_dev_pki(
        tmp_path_factory.mktemp("pki"),
        [PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub"),
         PartySpec(slug="gm-any", name="Elke gemeente", oin=Oin("00000001000000000009"),
                   kind="gemeente")],
        PASS,
    )  # fmt: skip


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(1, 100_000), students=st.integers(80, 220), order=st.randoms())
def test_every_byte_concerns_residents_and_everyone_at_risk_is_signalled_once(
    tmp_path_factory: pytest.TempPathFactory,
    pki: PkiLayout,
    seed: int,
    students: int,
    order: random.Random,
) -> None:
    tmp = tmp_path_factory.mktemp("access")
    region_dir = tmp / "region"
    generate_region(region_dir, students=students, seed=seed)
    engine = make_engine(f"sqlite:///{tmp / 'hub.db'}")
    migrate.upgrade(engine)
    ctx = region_hub(engine, tmp / "home", region_dir)
    reports = year_of_statuses(region_dir, f"access-{seed}")
    order.shuffle(reports)
    reconcile(ctx, reports, channel="sftp")
    region = load_region(region_dir)
    records = list(iter_students(region_dir))
    # More moves than the generator makes (5% of students), on random days, so routing after a
    # move is exercised in every example: the truth follows the same moves.
    codes = [str(m.code) for m in region.municipalities]
    moves: dict[str, list[tuple[date, str]]] = {
        r.student.identifier.value: [(m.date, str(m.gemeente)) for m in r.scenario.moves]
        for r in records
    }
    year = region.calendar.year
    with engine.begin() as conn:
        ids = {(row.school, row.leerlingid): row.id
               for row in conn.execute(select(student.c.id, student.c.school, student.c.leerlingid))}  # fmt: skip
        for r in records:
            if not r.scenario.expected_signals or order.random() < 0.5:
                continue
            sid = ids[(str(r.student.school), r.student.leerlingid)]
            if not moves[r.student.identifier.value]:
                conn.execute(insert(residence).values(student_id=sid, since=None,
                                                      gemeente=str(r.student.gemeente)))  # fmt: skip
            day = date.fromordinal(
                order.randint(year.first_day.toordinal(), year.next().last_day.toordinal())
            )
            if day in {d for d, _ in moves[r.student.identifier.value]}:
                continue  # two moves on one day have no order
            target = order.choice(codes)
            conn.execute(insert(residence).values(student_id=sid, since=day, gemeente=target))
            moves[r.student.identifier.value].append((day, target))

    def living(number: str, home: str, day: date) -> str:
        current = [(d, g) for d, g in moves[number] if d <= day]
        return max(current)[1] if current else home

    save_municipality_routes(
        ctx, [Route(str(m.code), "folder", {"folder": "unused"}) for m in region.municipalities]
    )
    hub = hub_signer(pki.root, PASS)
    certificate = load_certificate(pki.cert_path("gm-any", "enc"))
    first, last = evaluation_window(region.calendar)
    day = first
    while day <= last:
        run_signals(ctx, day)
        queue_signal_files(ctx, day, signer=lambda: hub, certificate_for=lambda g: certificate,
                           hub_oin=DEV_HUB_OIN, now=datetime.now(UTC))  # fmt: skip
        day += timedelta(days=order.randint(3, 9))

    by_number = {r.student.identifier.value: r for r in records}
    expected = {
        (n, e.kind.value): living(n, str(r.student.gemeente), e.date)
        for r in records
        for e in r.scenario.expected_signals
        if (n := r.student.identifier.value)
    }
    key = cms.Recipient(certificate, load_private_key(pki.key_path("gm-any", "enc"), PASS))
    verifier = Verifier(TrustStore.from_pem_file(pki.trust_bundle_path))
    delivered: Counter[tuple[str, str]] = Counter()
    with engine.connect() as conn:
        files = conn.execute(
            select(outbox.c.recipient, outbox.c.payload).where(outbox.c.kind == XML_KIND)
        ).all()
    for recipient, payload in files:
        root = parse_untrusted(cms.decrypt(payload, key), require_utf8=True)
        verifier.verify(root, expected_oin=Oin(DEV_HUB_OIN), source="signal file")
        assert root.findtext(f"{S}kop/{S}gemeentecode") == recipient
        for entry in root.iter(f"{S}signaal"):
            jongere = entry.find(f"{S}jongere")
            number = jongere.findtext(f"{S}bsn") or jongere.findtext(f"{S}onderwijsnummer")
            day_of = datetime.fromisoformat(entry.findtext(f"{S}signaaldatum")).date()
            assert living(number, str(by_number[number].student.gemeente), day_of) == recipient
            delivered[(number, entry.findtext(f"{S}soort"))] += 1
            assert expected.get((number, entry.findtext(f"{S}soort"))) == recipient
    assert set(delivered) == set(expected) and set(delivered.values()) <= {1}
    engine.dispose()
