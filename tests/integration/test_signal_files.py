"""Signal files from raise to the municipality's folder, read back as the municipality would:
decrypted with its own key (our CMS code and openssl), the hub's signature verified, valid
against signal.xsd. Every delivered byte is checked: a municipality gets only its own residents
(on the signal date, after moves), every signal reaches exactly one municipality, nothing of a
dossier's text (support needs, motivation, advice) is in any file, a municipality without a
route keeps its signals waiting, and a withdrawal follows in the next file."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from region_year import region_hub, year_of_statuses
from sqlalchemy import Engine, select

from connectors.file_delivery import FolderDeliveryTransport
from overstap.crypto import cms
from overstap.crypto.trust import TrustStore
from overstap.domain.identifiers import Oin
from overstap.domain.registration import StatusReport
from overstap.domain.states import RegistrationStatus
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.pki.load import load_certificate, load_private_key
from overstap.ports import Route
from overstap.region import generate_region, iter_students, load_region
from overstap.services.delivery import deliver_due, route_for, save_municipality_routes
from overstap.services.pki import DEV_HUB_OIN, hub_signer, region_parties
from overstap.services.reconcile import reconcile
from overstap.services.signal_files import queue_signal_files
from overstap.services.signals import run_signals
from overstap.store.tables import audit_event, dossier, signal
from overstap.xml.dsig import Verifier
from overstap.xml.safe import parse_untrusted
from overstap.xml.schemas import validate

PASS = b"signal-files-test-passphrase"
S = "{urn:overstap:signal:1}"
# Every element a signal file may hold (signal.xsd), and nothing else.
ALLOWED = {
    "signaalbestand", "kop", "bestandid", "aangemaakt", "gemeentecode", "regiocode", "schooljaar",
    "oinhub", "signaal", "signaalid", "soort", "reden", "signaaldatum", "jongere", "bsn",
    "onderwijsnummer", "voornaam", "voorvoegsel", "achternaam", "roepnaam", "geboortedatum",
    "adresgeheim", "adres", "straat", "nummer", "toevoeging", "postcode", "plaats", "voschool",
    "naam", "brincode", "vestigingscode", "inschrijvingshistorie", "registratie", "status",
    "statusdatum", "intrekking", "intrekkingsdatum",
}  # fmt: skip


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=400, seed=53)
    return out


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, region_dir: Path) -> PkiLayout:
    parties = [p for p in region_parties(load_region(region_dir)) if p.kind == "gemeente"]
    hub = PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub")
    return init_dev_pki(tmp_path_factory.mktemp("pki"), [hub, *parties], PASS)


def _open(data: bytes, pki: PkiLayout, gemeente: str) -> bytes:
    key = load_private_key(pki.key_path(f"gm-{gemeente}", "enc"), PASS)
    recipient = cms.Recipient(load_certificate(pki.cert_path(f"gm-{gemeente}", "enc")), key)
    return cms.decrypt(data, recipient)


def _read_file(data: bytes, pki: PkiLayout) -> Any:
    root = parse_untrusted(data, require_utf8=True)
    Verifier(TrustStore.from_pem_file(pki.trust_bundle_path)).verify(
        root, expected_oin=Oin(DEV_HUB_OIN), source="signal file"
    )
    assert validate(root, "signal") == []
    return root


def test_files_reach_exactly_the_right_municipalities(
    engine: Engine, region_dir: Path, pki: PkiLayout, tmp_path: Path, xmlsec1_bin: str
) -> None:
    ctx = region_hub(engine, tmp_path, region_dir)
    reconcile(ctx, year_of_statuses(region_dir, "files"), channel="sftp")
    region = load_region(region_dir)
    records = {(str(r.student.school), r.student.leerlingid): r for r in iter_students(region_dir)}
    by_number = {r.student.identifier.value: r for r in records.values()}
    # Every text of a dossier's student and mentor parts: none may reach a municipality
    # (DOMAIN.md: support needs and mentor text never go to one). Guardians have no element in
    # signal.xsd at all (ALLOWED below).
    secrets = {r.scenario.support_needs for r in records.values() if r.scenario.support_needs}
    with engine.connect() as conn:
        for (content,) in conn.execute(select(dossier.c.content)):
            for part in ("student_part", "mentor_part"):
                secrets |= {v for v in content[part].values() if isinstance(v, str) and len(v) > 8}
    assert len(secrets) > 20  # the texts the generator writes (a fixed set of phrases)
    gemeenten = [str(m.code) for m in region.municipalities]
    unrouted = gemeenten[0]
    inbox = tmp_path / "inbox"
    save_municipality_routes(
        ctx,
        [Route(g, "folder", {"folder": str(inbox / "{recipient}"), "oin": "00000001000000000001",
                             "pki_dir": str(pki.root)})
         for g in gemeenten[1:]],
    )  # fmt: skip
    for g in gemeenten[1:]:
        (inbox / g).mkdir(parents=True)
    hub = hub_signer(pki.root, PASS)

    def signer() -> Any:
        return hub

    def certificate(g: str) -> Any:
        return load_certificate(pki.cert_path(f"gm-{g}", "enc"))

    calendar = region.calendar
    moment = datetime(2027, 4, 1, 6, tzinfo=UTC)
    raised: list[Any] = []
    day = calendar.registration_deadline
    while day <= calendar.zomerlek_date:
        raised += run_signals(ctx, day, now=moment).raises
        queue_signal_files(ctx, day, signer=signer, certificate_for=certificate,
                           hub_oin=DEV_HUB_OIN, now=moment)  # fmt: skip
        day += timedelta(days=7)
    assert raised
    later = moment + timedelta(days=1)
    monkey_env = {"OVERSTAP_KEY_PASSPHRASE": PASS.decode()}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in monkey_env.items():
            mp.setenv(k, v)
        for g in gemeenten[1:]:
            # The files were queued at the (future) run moments: deliver after the last.
            deliver_due(ctx, route_for(ctx, g), FolderDeliveryTransport(), now=lambda: later)

    seen: Counter[str] = Counter()
    for g in gemeenten[1:]:
        for path in sorted((inbox / g).glob("SIG-*.p7m")):
            assert path.name.startswith(f"SIG-{g}-")
            plain = _open(path.read_bytes(), pki, g)
            if path.name.endswith(".csv.p7m"):
                text = plain.decode("utf-8-sig")
                assert text.startswith("regel;signaalid;")
                assert not [x for x in secrets if x in text]
                continue
            assert not any(x.encode() in plain for x in secrets)  # no dossier text, anywhere
            root = _read_file(plain, pki)
            assert root.findtext(f"{S}kop/{S}gemeentecode") == g
            names = {el.tag.split("}")[1] for el in root.iter() if el.tag.startswith(S)}
            assert names <= ALLOWED, names - ALLOWED
            for entry in root.iter(f"{S}signaal"):
                jongere = entry.find(f"{S}jongere")
                number = jongere.findtext(f"{S}bsn") or jongere.findtext(f"{S}onderwijsnummer")
                record = by_number[number]
                signal_day = datetime.fromisoformat(entry.findtext(f"{S}signaaldatum")).date()
                # Only residents of this municipality on the signal date.
                assert (
                    str(record.gemeente_on(signal_day)) == g == jongere.findtext(f"{S}gemeentecode")
                )
                seen[entry.findtext(f"{S}signaalid")] += 1
    # The openssl reading a municipality's own tooling would do, on one file.
    one = next(p for g in gemeenten[1:] for p in (inbox / g).glob("SIG-*.xml.p7m"))
    g = one.name[4:10]
    opened = subprocess.run(
        ["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(one), "-recip",
         str(pki.cert_path(f"gm-{g}", "enc")), "-inkey", str(pki.key_path(f"gm-{g}", "enc")),
         "-passin", f"pass:{PASS.decode()}"],
        capture_output=True, check=False,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == _open(one.read_bytes(), pki, g)
    # ... and xmlsec1 for the hub's signature, as the README tells a municipality.
    (tmp_path / "signals.xml").write_bytes(opened.stdout)
    checked = subprocess.run(
        [xmlsec1_bin, "--verify", "--enabled-key-data", "x509", "--trusted-pem",
         str(pki.ca_cert_path), str(tmp_path / "signals.xml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr

    routed = {s.signal_ref for s in raised if s.gemeente != unrouted}
    assert set(seen) == routed and set(seen.values()) == {1}  # each once, to one municipality
    with engine.connect() as conn:
        states = dict(conn.execute(select(signal.c.signal_ref, signal.c.state)).tuples().all())
    assert {states[r] for r in routed} == {"delivered"}
    waiting = {s.signal_ref for s in raised if s.gemeente == unrouted}
    assert {states[r] for r in waiting} <= {"raised"}


def test_a_withdrawal_goes_out_in_the_next_file(
    engine: Engine, region_dir: Path, pki: PkiLayout, tmp_path: Path
) -> None:
    ctx = region_hub(engine, tmp_path, region_dir)
    reconcile(ctx, year_of_statuses(region_dir, "withdraw"), channel="sftp")
    region = load_region(region_dir)
    deadline = region.calendar.registration_deadline
    inbox = tmp_path / "inbox"
    gemeenten = [str(m.code) for m in region.municipalities]
    save_municipality_routes(
        ctx, [Route(g, "folder", {"folder": str(inbox / "{recipient}"), "oin": "00000001000000000001"})
              for g in gemeenten],
    )  # fmt: skip
    hub = hub_signer(pki.root, PASS)

    def signer() -> Any:
        return hub

    def certificate(g: str) -> Any:
        return load_certificate(pki.cert_path(f"gm-{g}", "enc"))

    first = run_signals(ctx, deadline).raises[0]
    queue_signal_files(
        ctx, deadline, signer=signer, certificate_for=certificate, hub_oin=DEV_HUB_OIN
    )
    record = next(
        r for r in iter_students(region_dir)
        if str(r.gemeente_on(deadline)) == first.gemeente and r.student.leaving_year
        and not r.scenario.status_dates and r.scenario.left_cohort is None
    )  # fmt: skip
    late = deadline + timedelta(days=3)
    reconcile(ctx, [StatusReport("withdraw-late", datetime.combine(late, time(9), tzinfo=UTC),
                                 region.mbo_institutions[0].brin, record.student.school.brin,
                                 record.student.identifier, RegistrationStatus.ONTVANGEN, late)],
              channel="soap")  # fmt: skip
    plan = run_signals(ctx, late + timedelta(days=1))
    assert plan.withdrawals
    report = queue_signal_files(ctx, late + timedelta(days=1), signer=signer,
                                certificate_for=certificate, hub_oin=DEV_HUB_OIN)  # fmt: skip
    assert sum(f.withdrawals for f in report.files) == len(plan.withdrawals)
    assert queue_signal_files(ctx, late + timedelta(days=2), signer=signer,
                              certificate_for=certificate, hub_oin=DEV_HUB_OIN).files == []  # fmt: skip
    shutil.rmtree(inbox, ignore_errors=True)


def test_a_municipality_on_soap_gets_the_signed_file_by_leversignalen(
    engine: Engine, region_dir: Path, pki: PkiLayout, tmp_path: Path
) -> None:
    """Edukoppeling to a municipality's signal service (the reference peer, mutual TLS,
    2W-be-S): the Body is the hub-signed signaalbestand, the receipt closes the signals."""
    from connectors.reference.mbo_soap import SIGNAL_SERVICE, MboSoapServer
    from connectors.soap_delivery import SoapDeliveryTransport

    ctx = region_hub(engine, tmp_path, region_dir)
    reconcile(ctx, year_of_statuses(region_dir, "soap"), channel="sftp")
    region = load_region(region_dir)
    deadline = region.calendar.registration_deadline
    plan = run_signals(ctx, deadline)
    gemeente = max(
        {s.gemeente for s in plan.raises}, key=lambda g: sum(s.gemeente == g for s in plan.raises)
    )
    municipality = next(m for m in region.municipalities if str(m.code) == gemeente)
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_bytes(PASS)
    hub = hub_signer(pki.root, PASS)
    with MboSoapServer(pki.root, f"gm-{gemeente}", PASS, hub_oin=Oin(DEV_HUB_OIN),
                       service=SIGNAL_SERVICE) as server:  # fmt: skip
        save_municipality_routes(
            ctx,
            [Route(gemeente, "soap", {"endpoint": server.url, "oin": str(municipality.oin),
                                      "pki_dir": str(pki.root), "timeout": "10",
                                      "passphrase_file": str(passphrase_file)})],
        )  # fmt: skip
        report = queue_signal_files(ctx, deadline, signer=lambda: hub,
                                    certificate_for=lambda g: None, hub_oin=DEV_HUB_OIN)  # type: ignore[arg-type,return-value]  # fmt: skip
        assert [f.gemeente for f in report.files] == [gemeente]
        transport = SoapDeliveryTransport()
        try:
            delivered = deliver_due(ctx, route_for(ctx, gemeente), transport,
                                    now=lambda: datetime.now(UTC) + timedelta(minutes=1))  # fmt: skip
        finally:
            transport.close()
        assert (delivered.claimed, delivered.delivered) == (1, 1), delivered
        (document,) = server.received.values()
    root = _read_file(document, pki)  # the hub's own signature on the file, besides WS-Security
    refs = {e.findtext(f"{S}signaalid") for e in root.iter(f"{S}signaal")}
    assert refs == {s.signal_ref for s in plan.raises if s.gemeente == gemeente}
    with engine.connect() as conn:
        states = set(
            conn.execute(select(signal.c.state).where(signal.c.gemeente == gemeente)).scalars()
        )
    assert states == {"delivered"}
    with engine.connect() as conn:
        closed = (
            conn.execute(
                select(audit_event.c.detail).where(audit_event.c.action == "signals.delivered")
            )
            .scalars()
            .all()
        )
    assert len(closed) == 1 and f'"signals":{len(refs)}' in closed[0]
