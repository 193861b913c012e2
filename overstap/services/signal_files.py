"""Signal files: one per municipality per run, into the outbox, signed and encrypted.

After `run_signals` raised and withdrew, `queue_signal_files` gathers what no file has carried
yet, per municipality of residence: new signals and withdrawals of signals a file did carry. For
each municipality with a route it builds the `signaalbestand` (xsd/signal.xsd; validated, then
signed by the hub, ADR 6) and, for a drop (SFTP or folder), its CSV rendering for people, both
encrypted to the municipality's own certificate (CMS, readable with `openssl cms -decrypt`); a
SOAP route gets the signed document itself in LeverSignalen. They are queued in the outbox - in
the transaction that marks the signals sent, so a crash leaves either both or neither. The
outbox delivers them (SFTP drop, folder or SOAP) with retries and dead letters; a delivered file
makes its signals delivered (services.delivery).

A municipality without a route keeps its signals raised and is reported, never dropped: they go
out in the first run after a route exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from cryptography import x509
from lxml import etree  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Connection, select

from mappings.signal_xml import (
    FileHeader,
    Jongere,
    SignalEntry,
    WithdrawalEntry,
    signal_csv,
    signal_document,
)
from overstap.audit.chain import AuditEvent
from overstap.bootstrap import HubContext
from overstap.crypto import cms
from overstap.domain.calendar import SchoolYear
from overstap.domain.errors import ConfigurationError
from overstap.pki.devca import PkiLayout
from overstap.pki.load import load_certificate
from overstap.services.delivery import SIGNAL_FILE_KIND
from overstap.services.pki import hub_party, hub_signer
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.outbox import Outbox
from overstap.store.signals import (
    PendingSignal,
    addresses_of,
    history_of,
    mark_in_file,
    pending_for_files,
    pending_gemeenten,
    regions_of,
)
from overstap.store.students import identifier_from_row
from overstap.store.tables import municipality_route
from overstap.xml.dsig import Signer
from overstap.xml.schemas import validate

ACTOR = "overstap signals"
XML_KIND, CSV_KIND = SIGNAL_FILE_KIND, "signals-csv"


@dataclass(frozen=True, slots=True)
class QueuedFile:
    gemeente: str
    file_id: str
    signals: int
    withdrawals: int
    transport: str


@dataclass
class FilesReport:
    files: list[QueuedFile] = field(default_factory=list)
    no_route: dict[str, int] = field(default_factory=dict)  # gemeente -> entries waiting

    def counts(self) -> dict[str, object]:
        return {
            "files": len(self.files),
            "signals": sum(f.signals for f in self.files),
            "withdrawals": sum(f.withdrawals for f in self.files),
            "no_route": dict(self.no_route),
        }


def file_id_for(gemeente: str, on: date) -> str:
    """A file's public id: the municipality, the day and a random part (never a person)."""
    return f"SIG-{gemeente}-{on:%Y%m%d}-{uuid.uuid4().hex[:12]}"


def _routes(conn: Connection) -> dict[str, str]:
    return dict(
        conn.execute(select(municipality_route.c.gemeente, municipality_route.c.transport))
        .tuples()
        .all()
    )


def _jongere(
    s: PendingSignal, addresses: list[tuple[date | None, tuple[str, str, str, str] | None]]
) -> Jongere:
    row = s.student
    identifier = identifier_from_row(row)
    address = (
        None
        if row["straat"] is None
        else (row["straat"], row["huisnummer"], row["postcode"], row["plaats"])
    )
    for since, moved_to in addresses:  # the address on the signal date, after moves
        if since is None or since <= s.signal_date:
            address = moved_to
    return Jongere(
        identifier,
        row["voornamen"],
        row["voorvoegsel"] or "",
        row["achternaam"],
        row["roepnaam"] or "",
        row["geboortedatum"],
        bool(row["adres_geheim"]),
        address,
        s.gemeente,
    )


def queue_signal_files(
    ctx: HubContext,
    on: date,
    *,
    signer: Callable[[], Signer],
    certificate_for: Callable[[str], x509.Certificate],
    hub_oin: str,
    now: datetime | None = None,
) -> FilesReport:
    """Build and queue every pending file; see the module docstring. `signer()` gives the hub's
    signer (asked only when there is a file to sign), `certificate_for(gemeente)` the
    municipality's encryption certificate."""
    moment = now or datetime.now(UTC)
    report = FilesReport()
    with ctx.engine.begin() as conn:
        routes = _routes(conn)
        regions = regions_of(conn)
        events: list[AuditEvent] = []
        for gemeente in pending_gemeenten(conn):
            mine, theirs = pending_for_files(conn, gemeente)
            transport = routes.get(gemeente)
            if transport is None:
                report.no_route[gemeente] = len(mine) + len(theirs)
                continue
            student_ids = sorted({s.student_id for s in mine})
            history = history_of(conn, student_ids, on)
            addresses = addresses_of(conn, student_ids)
            file_id = file_id_for(gemeente, on)
            header = FileHeader(
                file_id,
                moment,
                gemeente,
                regions[gemeente],
                str(SchoolYear.containing(on)),
                hub_oin,
            )
            entries = [
                SignalEntry(
                    s.signal_ref,
                    s.kind,
                    s.school_year,
                    s.reason,
                    s.signal_date,
                    _jongere(s, addresses.get(s.student_id, [])),
                    s.school_name,
                    s.student["school"],
                    tuple(history.get(s.student_id, ())),
                )
                for s in mine
            ]
            gone = [WithdrawalEntry(w.signal_ref, w.withdrawn_on, w.reason) for w in theirs]
            signed = _signed_xml(header, entries, gone, signer())
            box = Outbox(conn, moment)
            if transport == "soap":
                # LeverSignalen carries the signed document itself, over mutual TLS and under
                # WS-Security (Edukoppeling); the CSV is a file for people in a drop only.
                box.enqueue(kind=XML_KIND, object_ref=f"{file_id}.xml", recipient=gemeente,
                            transport=transport, payload=signed)  # fmt: skip
            else:
                recipient = [certificate_for(gemeente)]
                box.enqueue(kind=XML_KIND, object_ref=f"{file_id}.xml", recipient=gemeente,
                            transport=transport, payload=cms.encrypt(signed, recipient))  # fmt: skip
                box.enqueue(kind=CSV_KIND, object_ref=f"{file_id}.csv", recipient=gemeente,
                            transport=transport,
                            payload=cms.encrypt(signal_csv(entries, gone), recipient))  # fmt: skip
            mark_in_file(
                conn, file_id, [s.signal_id for s in mine], [w.signal_id for w in theirs], moment
            )
            report.files.append(QueuedFile(gemeente, file_id, len(mine), len(theirs), transport))
            events.append(
                AuditEvent(
                    ACTOR,
                    "signals.file_queued",
                    "signal_file",
                    file_id,
                    origin=f"signals:{on}",
                    detail={
                        "gemeente": gemeente,
                        "signals": [s.signal_ref for s in mine],
                        "withdrawals": [w.signal_ref for w in theirs],
                    },
                )
            )
        AuditLog(conn, fixed_clock(moment)).append_many(events)
    return report


def _signed_xml(
    header: FileHeader,
    signals: Sequence[SignalEntry],
    withdrawals: Sequence[WithdrawalEntry],
    signer: Signer,
) -> bytes:
    """The file's XML, validated and signed by the hub."""
    root = signal_document(header, signals, withdrawals)
    violations = validate(root, "signal")
    if violations:
        # Our own mapping broke the schema: a bug, never a partial delivery.
        first = violations[0]  # its path and rule: a schema message may quote a value
        raise RuntimeError(
            f"signal file {header.file_id} breaks signal.xsd: {first.path} {first.rule}"
        )
    signer.sign(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def plan_files(ctx: HubContext, passphrase: bytes) -> dict[str, object]:
    """What `queue_with_hub_pki` would do now, writing nothing: which municipalities have news,
    which of them have no route (their signals wait) and which no encryption certificate (a
    configuration error), after loading the hub's signing key as a real run would."""
    pki_dir = ctx.settings.pki_dir
    hub_signer(pki_dir, passphrase)  # the key and passphrase a file needs, or a clear error
    layout = PkiLayout(pki_dir)
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        news = pending_gemeenten(conn)
        routes = _routes(conn)
    return {
        "with_news": len(news),
        "no_route": [g for g in news if g not in routes],
        "no_certificate": [
            g for g in news if g in routes and not layout.cert_path(f"gm-{g}", "enc").exists()
        ],
    }


def queue_with_hub_pki(
    ctx: HubContext, on: date, passphrase: bytes, *, now: datetime | None = None
) -> FilesReport:
    """`queue_signal_files` with the hub's own PKI directory: its signing key (loaded once) and
    each municipality's encryption certificate (`gm-<code>`). A municipality with a route but
    no certificate is a configuration error naming it: its signals wait, none is sent in clear."""
    pki_dir = ctx.settings.pki_dir
    layout = PkiLayout(pki_dir)
    certificates: dict[str, x509.Certificate] = {}

    def certificate_for(gemeente: str) -> x509.Certificate:
        found = certificates.get(gemeente)
        if found is None:
            path = layout.cert_path(f"gm-{gemeente}", "enc")
            if not path.exists():
                raise ConfigurationError(
                    f"municipality {gemeente}", f"has no encryption certificate at {path}"
                )
            found = certificates[gemeente] = load_certificate(path)
        return found

    loaded: list[Signer] = []

    def signer() -> Signer:
        if not loaded:  # load the key once, and only when a file needs it
            loaded.append(hub_signer(pki_dir, passphrase))
        return loaded[0]

    return queue_signal_files(
        ctx,
        on,
        signer=signer,
        certificate_for=certificate_for,
        hub_oin=str(hub_party().oin),
        now=now,
    )
