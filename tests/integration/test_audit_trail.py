"""One student's trail: from the region load to the delivered signal file, through dossier,
status, signal and outbox records - found by pseudonym and by the ids of the student's own
objects, nothing of anyone else's - and the look itself is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from region_year import region_hub, year_of_statuses
from sqlalchemy import Engine, select

from connectors.file_delivery import FolderDeliveryTransport
from overstap.domain.identifiers import Oin
from overstap.domain.states import SignalKind
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.pki.load import load_certificate
from overstap.ports import Route
from overstap.region import generate_region, iter_students, load_region
from overstap.services.audit_trail import view_trail
from overstap.services.delivery import deliver_due, route_for, save_municipality_routes
from overstap.services.pki import DEV_HUB_OIN, hub_signer, region_parties
from overstap.services.reconcile import reconcile
from overstap.services.signal_files import queue_signal_files
from overstap.services.signals import run_signals
from overstap.store.tables import audit_event

PASS = b"audit-trail-test"


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=300, seed=47)
    return out


def test_a_students_trail_from_pull_to_delivered_signal(
    engine: Engine, region_dir: Path, tmp_path: Path
) -> None:
    ctx = region_hub(engine, tmp_path, region_dir)
    reconcile(ctx, year_of_statuses(region_dir, "trail"), channel="sftp")
    region = load_region(region_dir)
    z = region.calendar.zomerlek_date
    record = next(
        r for r in iter_students(region_dir)
        if [e.kind for e in r.scenario.expected_signals] == [SignalKind.ZOMERLEK]
    )  # fmt: skip
    gemeente = str(record.gemeente_on(z))
    party = next(p for p in region_parties(region) if p.slug == f"gm-{gemeente}")
    hub = PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub")
    pki: PkiLayout = init_dev_pki(tmp_path / "pki", [hub, party], PASS)
    (tmp_path / "drop").mkdir()
    save_municipality_routes(ctx, [Route(gemeente, "folder", {"folder": str(tmp_path / "drop"),
                                                               "oin": str(party.oin)})])  # fmt: skip
    run_signals(ctx, z)
    signer = hub_signer(pki.root, PASS)
    certificate: Any = load_certificate(pki.cert_path(party.slug, "enc"))
    queue_signal_files(ctx, z, signer=lambda: signer, certificate_for=lambda g: certificate,
                       hub_oin=DEV_HUB_OIN)  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OVERSTAP_KEY_PASSPHRASE", PASS.decode())
        mp.setenv("OVERSTAP_PKI_DIR", str(pki.root))
        deliver_due(ctx, route_for(ctx, gemeente), FolderDeliveryTransport(),
                    now=lambda: datetime.now(UTC) + timedelta(minutes=1))  # fmt: skip

    subject = ctx.pseudonyms.subject(record.student.identifier)
    trail = view_trail(ctx, subject, viewer="auditor-anna", origin="test")
    actions = [r.action for r in trail.records]
    for expected in ("student.created", "dossier.created", "status.received", "signal.raised",
                     "signals.file_queued", "message.queued", "message.delivered",
                     "signals.delivered"):  # fmt: skip
        assert expected in actions, (expected, actions)
    # Nothing about anyone else: student records are this student's, statuses name them.
    assert all(r.object_ref == subject for r in trail.records if r.object_kind == "student")
    assert all(subject in r.detail for r in trail.records if r.action == "status.received")
    number = record.student.identifier.value
    assert not any(number in f"{r.object_ref}{r.detail}{r.origin}" for r in trail.records)
    with engine.connect() as conn:
        looked = conn.execute(
            select(audit_event.c.actor, audit_event.c.object_ref, audit_event.c.detail).where(
                audit_event.c.action == "audit.trail_viewed"
            )
        ).one()
    assert looked.actor == "person:auditor-anna" and looked.object_ref == subject
    assert f'"records":{len(trail.records)}' in looked.detail
