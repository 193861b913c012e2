"""Privacy scan (SECURITY.md; issue 8): seed known personal numbers, run the hub's flows
including their failure paths, then scan everything the hub wrote - its logs at DEBUG, the
audit chain, every table outside the few columns whose job is to hold the number, every file
name and byte it wrote (delivered files, the auditors' export) - for the numbers and for their
plain hashes (MD5, SHA-1, SHA-256 hex). None may appear.

Flows: region load; SIS pulls with a corrupted export (a number failing the elfproef, a number
used twice: quarantine); status intake with an unknown student (a work item); signals over the
year with their files delivered to municipality folders; the per-student trail; the audit export.
The web view's pages are scanned too; Airflow XComs are scanned in tests/dags/test_signals_dag.py
(a real DAG run over a region).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from region_year import year_of_statuses
from sqlalchemy import inspect, select, text, update

from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.domain.identifiers import Bsn, Oin, elfproef_remainder
from overstap.domain.registration import StatusReport
from overstap.domain.states import RegistrationStatus
from overstap.pki import PartySpec, init_dev_pki
from overstap.pki.load import load_certificate
from overstap.ports import Route
from overstap.region import generate_region, iter_students, load_region
from overstap.runtime.wiring import sis_connector
from overstap.services.audit_export import export_audit
from overstap.services.audit_trail import view_trail
from overstap.services.delivery import deliver_due, route_for, save_municipality_routes
from overstap.services.pki import DEV_HUB_OIN, hub_signer, region_parties
from overstap.services.reconcile import reconcile
from overstap.services.region_load import load_region_into_hub
from overstap.services.signal_files import queue_signal_files
from overstap.services.signals import run_signals
from overstap.services.sis_sources import run_pull
from overstap.store import migrate
from overstap.store.engine import make_engine
from overstap.store.tables import dossier

PASS = b"privacy-scan-test"
# The columns whose job is to hold a personal number or the exact bytes that carried one:
# the student's own number, a quarantined record's raw bytes (kept for the school to fix), and
# an outgoing message's payload (the dossier or signal file itself, for its addressee only).
ALLOWED = {("student", "bsn"), ("student", "onderwijsnummer"), ("quarantine", "raw"),
           ("outbox", "payload")}  # fmt: skip
_TOKENS = re.compile(r"[0-9a-f]{9,64}")


def _forms(numbers: set[str]) -> dict[str, str]:
    """Each number and its plain hashes -> the number (for the message)."""
    found: dict[str, str] = {}
    for n in numbers:
        found[n] = n
        for algorithm in ("md5", "sha1", "sha256"):
            found[hashlib.new(algorithm, n.encode()).hexdigest()] = n
    return found


def _hits(text_: str, forms: dict[str, str]) -> set[str]:
    # Any run of digits/hex is checked whole and by its 9-digit windows: a number inside a
    # longer token (a file name, a concatenation) still counts.
    hits = set()
    for token in _TOKENS.findall(text_.lower()):
        if token in forms:
            hits.add(forms[token])
        for i in range(len(token) - 8):
            if token[i : i + 9] in forms:
                hits.add(forms[token[i : i + 9]])
    return hits


def _spare_bsns() -> Iterator[str]:
    return (str(n) for n in range(990000000, 999999999) if elfproef_remainder(str(n)) == 0)


def test_no_personal_number_or_its_plain_hash_anywhere_the_hub_writes(tmp_path: Path) -> None:
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        seeded = _run_flows(tmp_path)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    numbers = {r.student.identifier.value for r in iter_students(tmp_path / "region")}
    numbers |= seeded
    forms = _forms(numbers)

    assert not _hits(log.getvalue(), forms), "a personal number in the log"
    for page in _web_pages(tmp_path):
        assert not _hits(page, forms), "a personal number on a web page"
    engine = make_engine(f"sqlite:///{tmp_path / 'home' / 'overstap.db'}")
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            columns = [c["name"] for c in inspect(conn).get_columns(table)]
            kept = [c for c in columns if (table, c) not in ALLOWED]
            for row in conn.execute(text(f'SELECT {", ".join(kept)} FROM "{table}"')):  # noqa: S608
                found = _hits(" ".join(str(v) for v in row), forms)
                assert not found, f"a personal number in table {table}"
    engine.dispose()
    for path in tmp_path.rglob("*"):
        if path.is_dir() or path.is_relative_to(tmp_path / "region"):
            continue  # the region is the SIS's own data, the input
        if path.name.startswith("overstap.db") or path.is_relative_to(tmp_path / "pki"):
            continue  # the database is scanned above; keys hold no personal data
        assert not _hits(str(path.relative_to(tmp_path)), forms), f"in a file name: {path.name}"
        assert not _hits(path.read_bytes().decode("latin-1"), forms), f"in file {path.name}"


def _run_flows(tmp_path: Path) -> set[str]:
    """Run the flows; returns the numbers seeded besides the region's own."""
    region_dir = tmp_path / "region"
    generate_region(region_dir, students=150, seed=71)
    region = load_region(region_dir)
    home = tmp_path / "home"
    engine = make_engine(f"sqlite:///{home / 'overstap.db'}") if home.mkdir() is None else None
    assert engine is not None
    migrate.upgrade(engine)
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(home)}), engine, Pseudonymizer(bytes(32))
    )
    load_region_into_hub(ctx, region_dir)
    spare = _spare_bsns()
    bad_elfproef, unknown = "123456789", next(spare)

    # SIS pulls with a corrupted export: a number failing the elfproef, a number used twice.
    school = region.vo_schools[0]
    export = next((region_dir / "sis" / str(school.location)).glob("*.csv"))
    lines = export.read_bytes().split(b"\r\n")
    first = next(r for r in iter_students(region_dir) if r.student.school == school.location)
    number = first.student.identifier.value.encode()
    extra = [lines[1].replace(number, bad_elfproef.encode()), lines[1]]  # bad number, duplicate
    export.write_bytes(b"\r\n".join([*lines[:-1], *extra, lines[-1]]))
    for s in region.vo_schools:
        run_pull(ctx, str(s.location), sis_connector, school_year=region.calendar.year)

    # Status intake: the year, and a report about a student the hub does not know.
    with engine.begin() as conn:
        conn.execute(update(dossier).values(state="afgeleverd"))
    reports = year_of_statuses(region_dir, "privacy")
    deadline = region.calendar.registration_deadline
    reports.append(StatusReport("privacy-unknown", datetime.combine(deadline, time(9), tzinfo=UTC),
                                region.mbo_institutions[0].brin, school.location.brin,
                                Bsn(unknown), RegistrationStatus.ONTVANGEN, deadline))  # fmt: skip
    reconcile(ctx, reports, channel="sftp")

    # Signals over the year, files to every municipality's folder.
    parties = [p for p in region_parties(region) if p.kind == "gemeente"]
    hub = PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub")
    pki = init_dev_pki(tmp_path / "pki", [hub, *parties], PASS)
    signer = hub_signer(pki.root, PASS)
    drops = tmp_path / "drops"
    save_municipality_routes(ctx, [Route(str(m.code), "folder", {"folder": str(drops / "{recipient}"),
                                                                  "oin": str(m.oin)})
                                   for m in region.municipalities])  # fmt: skip
    for m in region.municipalities:
        (drops / str(m.code)).mkdir(parents=True)
    day = deadline
    while day <= region.calendar.year.next().last_day:
        run_signals(ctx, day)
        queue_signal_files(ctx, day, signer=lambda: signer, hub_oin=DEV_HUB_OIN,
                           certificate_for=lambda g: load_certificate(pki.cert_path(f"gm-{g}", "enc")))  # fmt: skip
        day += timedelta(days=30)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OVERSTAP_KEY_PASSPHRASE", PASS.decode())
        mp.setenv("OVERSTAP_PKI_DIR", str(pki.root))
        for m in region.municipalities:
            deliver_due(ctx, route_for(ctx, str(m.code)), _folder(),
                        now=lambda: datetime.now(UTC) + timedelta(days=1))  # fmt: skip

    # An auditor looks at one student and takes an export.
    view_trail(ctx, ctx.pseudonyms.subject(first.student.identifier), viewer="auditor", origin="t")
    today = datetime.now(UTC).date()
    export_audit(ctx, date(2000, 1, 1), today, tmp_path / "export", signer=signer,
                 ca_bundle=pki.trust_bundle_path)  # fmt: skip
    with engine.connect() as conn:
        assert (
            conn.execute(select(text("count(*)")).select_from(text("quarantine"))).scalar_one() >= 2
        )
    engine.dispose()
    return {bad_elfproef, unknown}


def _folder() -> object:
    from connectors.file_delivery import FolderDeliveryTransport

    return FolderDeliveryTransport()


def _web_pages(tmp_path: Path) -> list[str]:
    """Every page of the audit web view, as an auditor sees it after the flows."""
    from fastapi.testclient import TestClient

    from overstap.web.accounts import Accounts
    from overstap.web.app import create_app

    home = tmp_path / "home"
    Accounts(home / "web-users.json").add("scan", "auditor", "a long scanning password")
    client = TestClient(create_app({"OVERSTAP_HOME": str(home)}))
    client.post("/login", data={"name": "scan", "password": "a long scanning password"})
    record = next(iter_students(tmp_path / "region"))
    pages = [client.get(page) for page in ("/", "/events", "/outbox")]
    pages.append(client.get("/events", params={"kind": "signal"}))
    pages.append(client.get("/trail", params={"school": str(record.student.school),
                                               "leerlingid": record.student.leerlingid}))  # fmt: skip
    assert all(p.status_code == 200 for p in pages) and "ps1_" in pages[-1].text
    return [p.text for p in pages]
