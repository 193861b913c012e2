"""`overstap`: the hub's command line for administrators, schools and auditors.

Commands import their machinery when they run, so `overstap --help` stays fast and a broken
optional component cannot stop unrelated commands.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from overstap.cli.registry import registry_app
from overstap.errors import ConfigurationError, InvalidRecord

if TYPE_CHECKING:
    from datetime import date

    from overstap.bootstrap import HubContext
    from overstap.config import Settings
    from overstap.services.signals import SignalPlan
    from overstap.xml.dsig import Signer

# Tracebacks never print local variables: a local may hold a student's record.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=__doc__,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(no_args_is_help=True, help="The hub's database.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail.")
certs_app = typer.Typer(no_args_is_help=True, help="Development PKI (PKIoverheid-shaped).")
region_app = typer.Typer(
    no_args_is_help=True, help="Synthetic regions for demo, tests, benchmarks."
)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(certs_app, name="certs")
app.add_typer(region_app, name="region")
xml_app = typer.Typer(no_args_is_help=True, help="Check XML documents the way the hub does.")
app.add_typer(xml_app, name="xml")
dossier_app = typer.Typer(
    no_args_is_help=True, help="Transfer dossiers (Digitaal Doorstroomdossier)."
)
app.add_typer(dossier_app, name="dossier")
sis_app = typer.Typer(no_args_is_help=True, help="Student-administration (SIS) exports.")
app.add_typer(sis_app, name="sis")
report_app = typer.Typer(no_args_is_help=True, help="Who is where: per school, per region.")
app.add_typer(report_app, name="report")
web_app = typer.Typer(
    no_args_is_help=True, help="The read-only web view for auditors and administrators."
)
app.add_typer(web_app, name="web")
signals_app = typer.Typer(
    no_args_is_help=True, help="Signals to municipalities (Doorstroompunt): preview and raise."
)
app.add_typer(signals_app, name="signals")
outbox_app = typer.Typer(
    no_args_is_help=True, help="Outgoing messages: queue, retries, dead letters."
)
app.add_typer(outbox_app, name="outbox")
app.add_typer(registry_app, name="registry")

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    # escape: our messages end in "[rule X]", which rich would otherwise take for markup.
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the hub's tables to the newest schema."""
    from overstap.bootstrap import HubContext
    from overstap.store import migrate

    ctx = HubContext.open(migrate=True)
    console.print(f"database at revision [bold]{migrate.current_revision(ctx.engine)}[/]")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the hub's database."""
    from overstap.bootstrap import HubContext
    from overstap.store import migrate

    ctx = HubContext.open(require_schema=False)
    current, head = migrate.current_revision(ctx.engine), migrate.head_revision()
    console.print(f"current {current or '(empty)'}, newest {head}")
    if current != head:
        raise typer.Exit(1)


def _hub_signer_and_trust(ctx: HubContext) -> tuple[Signer, Path]:
    from overstap.pki import PkiLayout
    from overstap.pki.devca import passphrase_from
    from overstap.services.pki import hub_signer

    pki_dir = ctx.settings.pki_dir
    return hub_signer(pki_dir, passphrase_from(pki_dir, os.environ)), PkiLayout(
        pki_dir
    ).trust_bundle_path


@audit_app.command("verify")
def audit_verify(
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Verify an export directory instead of the database."),
    ] = None,
) -> None:
    """Recompute the whole chain and check its signed checkpoints; name the first record that
    does not hold. With --export, verify an auditors' export offline (no database needed)."""
    if export is not None:
        from overstap.audit.offline_verify import verify_export

        problems = verify_export(export)
        if problems:
            err.print(f"[bold red]export BROKEN[/]: {escape(problems[0])}")
            raise typer.Exit(1)
        console.print("[bold green]export OK[/]: every record holds, between signed checkpoints")
        return
    from overstap.bootstrap import HubContext
    from overstap.crypto.trust import TrustStore
    from overstap.pki import PkiLayout
    from overstap.services.audit_checkpoints import verify_with_checkpoints
    from overstap.services.pki import hub_party
    from overstap.store.audit_log import AuditLog

    ctx = HubContext.open()
    bundle = PkiLayout(ctx.settings.pki_dir).trust_bundle_path
    if bundle.exists():
        result = verify_with_checkpoints(ctx, TrustStore.from_pem_file(bundle), hub_party().oin)
        report, problem, checkpoints = result.chain, result.problem, result.checkpoints
    else:  # no PKI yet: there can be no checkpoints either
        with ctx.engine.connect().execution_options(read_only=True) as conn:  # never blocks writers
            report = AuditLog(conn).verify()
        problem, checkpoints = report.problem, 0
    if problem is not None:
        err.print(
            f"[bold red]audit chain BROKEN[/] at record {problem.seq}: {problem.reason} "
            f"({report.count} records read)"
        )
        raise typer.Exit(1)
    console.print(
        f"[bold green]audit chain OK[/]: {report.count} records, head {report.head_hash[:16]}, "
        f"{checkpoints} signed checkpoints hold"
    )


@audit_app.command("trail")
def audit_trail(
    bsn: Annotated[str | None, typer.Option("--bsn", help="The student's BSN.")] = None,
    onderwijsnummer: Annotated[
        str | None, typer.Option("--onderwijsnummer", help="Or the onderwijsnummer.")
    ] = None,
    school: Annotated[str | None, typer.Option(help="Or the school location (12AB00) ...")] = None,
    leerlingid: Annotated[
        str | None, typer.Option(help="... with the school's leerlingid.")
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who is looking (default: the login name).")
    ] = None,
) -> None:
    """The life of one student's data: pulled, dossier, deliveries, statuses, signals, and who
    looked. Looking is itself an audit record. Shows the pseudonym, never the number."""
    import getpass

    from rich.table import Table
    from sqlalchemy import select

    from overstap.bootstrap import HubContext
    from overstap.domain.identifiers import Bsn, Onderwijsnummer
    from overstap.services.audit_trail import view_trail
    from overstap.store.tables import student

    ctx = HubContext.open()
    try:
        if bsn is not None:
            subject = ctx.pseudonyms.subject(Bsn.parse(bsn))
        elif onderwijsnummer is not None:
            subject = ctx.pseudonyms.subject(Onderwijsnummer.parse(onderwijsnummer))
        elif school and leerlingid:
            with ctx.engine.connect().execution_options(read_only=True) as conn:
                found = conn.execute(
                    select(student.c.subject_key).where(
                        student.c.school == school.upper(), student.c.leerlingid == leerlingid
                    )
                ).scalar_one_or_none()
            if found is None:
                raise _fail("no student with that leerlingid at that school")
            subject = found
        else:
            raise _fail("give --bsn, --onderwijsnummer, or --school with --leerlingid")
    except InvalidRecord as exc:
        raise _fail(str(exc)) from None
    trail = view_trail(ctx, subject, viewer=by or getpass.getuser(), origin="cli")
    table = Table("seq", "time (UTC)", "action", "object", "result", "origin", title=subject)
    for r in trail.records:
        table.add_row(
            str(r.seq), r.at[:19].replace("T", " "), r.action,
            escape(f"{r.object_kind} {r.object_ref}"), r.result, escape(r.origin),
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(trail.records)} records (this look is recorded too)")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain head now (the checkpoint DAG does this every hour)."""
    from overstap.bootstrap import HubContext
    from overstap.services.audit_checkpoints import make_checkpoint

    ctx = HubContext.open()
    signer, _ = _hub_signer_and_trust(ctx)
    made = make_checkpoint(ctx, signer)
    if made is None:
        console.print("nothing new since the last checkpoint")
        return
    console.print(f"checkpoint at record {made.checkpoint.seq}, hash {made.checkpoint.hash[:16]}")


@audit_app.command("export")
def audit_export(
    from_: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write (new or empty).")],
) -> None:
    """Write the audit records of those days for an auditor, verifiable offline with openssl and
    a few lines of Python (in the export), or `overstap audit verify --export DIR`."""
    from datetime import date

    from overstap.bootstrap import HubContext
    from overstap.services.audit_export import export_audit

    try:
        start, end = date.fromisoformat(from_), date.fromisoformat(to)
    except ValueError:
        raise _fail("--from and --to must be dates written YYYY-MM-DD") from None
    if out.exists() and any(out.iterdir()):
        raise _fail(f"{out} is not empty")
    ctx = HubContext.open()
    signer, bundle = _hub_signer_and_trust(ctx)
    report = export_audit(ctx, start, end, out, signer=signer, ca_bundle=bundle)
    console.print(
        f"exported records {report.first}-{report.last} with {report.checkpoints} signed "
        f"checkpoints to {out}; see {out / 'PROCEDURE.md'}"
    )


@certs_app.command("init")
def certs_init(
    region: Annotated[
        Path | None, typer.Option(help="Region directory: issue certificates for all its parties.")
    ] = None,
    valid_days: Annotated[int, typer.Option(help="Validity of issued certificates.")] = 365,
) -> None:
    """Build the dev CA (once) and certificates for the hub and every party of a region."""
    from overstap.services.pki import issue_dev_pki

    ctx_settings = _settings()
    layout, issued = issue_dev_pki(ctx_settings, region, valid_days=valid_days)
    console.print(
        f"PKI at {layout.root}: {issued} new certificates; trust store {layout.trust_bundle_path}"
    )


@certs_app.command("status")
def certs_status(
    warn_days: Annotated[int, typer.Option(help="Warn this many days before expiry.")] = 30,
) -> None:
    """List certificates and say which expire soon or have expired (exit 1 if any expired)."""
    from rich.table import Table

    from overstap.pki.devca import certificate_status

    settings = _settings()
    statuses = certificate_status(settings.pki_dir, warn_days=warn_days)
    if not statuses:
        raise _fail(f"no certificates under {settings.pki_dir} (run `overstap certs init`)")
    table = Table("certificate", "OIN", "purpose", "expires", "days left", "state")
    colour = {"ok": "green", "expiring": "yellow", "expired": "red"}
    for s in statuses:
        table.add_row(
            s.subject,
            str(s.oin or ""),
            s.purpose,
            s.not_after.date().isoformat(),
            str(s.days_left),
            f"[{colour.get(s.state, 'white')}]{s.state}[/]",
        )
    console.print(table)
    if any(s.state == "expired" for s in statuses):
        raise typer.Exit(1)


@region_app.command("generate")
def region_generate(
    students: Annotated[int, typer.Option(min=1, help="Number of students.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same region.")] = 1,
    out: Annotated[Path | None, typer.Option(help="Output directory.")] = None,
) -> None:
    """Write a deterministic synthetic region (parties, students, SIS exports per school)."""
    from overstap.cli.progress import progress_bar
    from overstap.region.generate import generate_region

    target = out or _settings().home / "regions" / f"synth-{seed}-{students}"
    with progress_bar("generating students", total=students) as advance:
        summary = generate_region(target, students=students, seed=seed, progress=advance)
    console.print(f"region written to {target}")
    console.print(summary)


@region_app.command("load")
def region_load(directory: Path) -> None:
    """Load a region's parties and students into the hub (idempotent), with audit records."""
    from overstap.bootstrap import HubContext
    from overstap.cli.progress import progress_bar
    from overstap.services.region_load import load_region_into_hub

    ctx = HubContext.open(migrate=True)
    with progress_bar("loading students") as advance:
        result = load_region_into_hub(ctx, directory, progress=advance)
    console.print(result)


@xml_app.command("validate")
def xml_validate(file: Path) -> None:
    """Parse safely, pick the schema by root element, print every violation (exit 1 if any).

    A schema-valid dossier is also checked against the VO-MBO profile rules (as of today);
    profile warnings are printed but do not fail the command.
    """
    from datetime import date

    from overstap.xml.profile import check_profile, errors
    from overstap.xml.safe import parse_untrusted_file
    from overstap.xml.schemas import DOCUMENT_TYPES, validate

    try:
        root = parse_untrusted_file(file)
    except InvalidRecord as exc:
        raise _fail(str(exc)) from None
    violations = validate(root)
    for v in violations:
        err.print(escape(f"{file.name}: {v}"))
    if violations:
        raise _fail(f"{len(violations)} violation(s)")
    # The profile rules assume a schema-valid dossier, so they run only after the schema passed.
    profile = (
        check_profile(root, today=date.today())
        if root.tag == DOCUMENT_TYPES["dossier"].qname
        else []
    )
    for p in profile:
        err.print(escape(f"{file.name}: {p}"))  # str() marks warnings as "(warning)"
    if errors(profile):
        raise _fail(f"{len(errors(profile))} profile rule violation(s)")
    console.print(f"[bold green]{file.name}: valid[/]")


@xml_app.command("verify")
def xml_verify(
    file: Path,
    oin: Annotated[str | None, typer.Option(help="OIN the signer must have.")] = None,
    trust: Annotated[Path | None, typer.Option(help="PEM bundle of trusted CAs.")] = None,
) -> None:
    """Verify the enveloped signature strictly against our trust store (exit 1 if it fails)."""
    from overstap.crypto.trust import TrustStore
    from overstap.domain.identifiers import Oin
    from overstap.xml.dsig import Verifier
    from overstap.xml.safe import parse_untrusted_file

    store = TrustStore.from_pem_file(trust or _settings().pki_dir / "ca" / "trust.pem")
    try:
        root = parse_untrusted_file(file)
        doc = Verifier(store).verify(
            root, expected_oin=Oin.parse(oin) if oin else None, source=file.name
        )
    except InvalidRecord as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"[bold green]{file.name}: signature OK[/], signed by {doc.signer.chain[0].subject.rfc4514_string()}"
        f" (OIN {doc.signer.oin})"
    )


@dossier_app.command("build")
def dossier_build(
    student: Annotated[str, typer.Option(help="The student's leerlingid at the vo school.")],
    out: Annotated[Path, typer.Option(help="File to write the dossier XML to.")],
    school: Annotated[
        str | None, typer.Option(help="School location (BRIN + vestiging) when ambiguous.")
    ] = None,
    dossier: Annotated[
        str | None, typer.Option("--dossier", help="Dossier id when the student has several.")
    ] = None,
    sign: Annotated[bool, typer.Option(help="Sign with the hub's key.")] = True,
    today: Annotated[
        str | None, typer.Option(help="Date the profile rules check against (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Build one student's dossier from the store: schema, profile rules, then signature.

    Nothing is written when any rule fails; every violation is printed with its path and rule.
    """
    from datetime import date

    from overstap.bootstrap import HubContext
    from overstap.domain.identifiers import BrinVestiging
    from overstap.pki.devca import passphrase_from
    from overstap.services.dossier_build import build, describe, select_dossiers
    from overstap.services.pki import hub_signer

    try:
        day = date.fromisoformat(today) if today else date.today()
    except ValueError:
        raise _fail("--today must be a date written YYYY-MM-DD") from None
    ctx = HubContext.open()
    try:
        location = str(BrinVestiging.parse(school)) if school else None
        found = select_dossiers(ctx, student, school=location, dossier_id=dossier)
        if len(found) > 1:
            for line in describe(found):
                err.print(escape(line))
            raise _fail(f"{len(found)} dossiers match: choose one with --school or --dossier")
        chosen = found[0]
        pki_dir = ctx.settings.pki_dir
        signer = hub_signer(pki_dir, passphrase_from(pki_dir, os.environ)) if sign else None
        built = build(ctx, chosen, today=day, signer=signer)
    except InvalidRecord as exc:
        raise _fail(str(exc)) from None
    for v in [*built.schema_violations, *built.profile_violations]:
        err.print(escape(f"{chosen.dossier_id}: {v}"))
    if built.xml is None:
        raise _fail(f"dossier {chosen.dossier_id} not written: it violates the rules above")
    out.write_bytes(built.xml)
    state = "signed" if built.signed else "unsigned"
    console.print(f"[bold green]{out}[/]: dossier {chosen.dossier_id}, valid, {state}")


@sis_app.command("check")
def sis_check(
    file: Path,
    mapping: Annotated[
        str, typer.Option(help="Mapping name (see mappings/sis/) or a mapping .yaml file.")
    ],
) -> None:
    """Check a SIS export against a mapping: what would import, what not and why (exit 1 if any
    record would be refused, 2 for an unknown or broken mapping). Prints counts and line
    numbers, never a student's data."""
    from mappings.sis_mapping import check_export, load_mapping, load_mapping_file, render_check

    try:
        chosen = (
            load_mapping_file(Path(mapping)) if mapping.endswith(".yaml") else load_mapping(mapping)
        )
    except ConfigurationError as exc:
        raise _fail(str(exc), code=2) from None
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail(f"{file}: cannot be read ({exc.strerror})") from None
    report = check_export(chosen, data, file.name)
    for line in render_check(report):
        console.print(escape(line), highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


@sis_app.command("pull")
def sis_pull(
    school: Annotated[
        str, typer.Option(help="School location (BRIN + vestiging, e.g. 12AB00) to pull.")
    ],
) -> None:
    """Run one pull of a school's SIS now: import, quarantine, report (exit 1 on refusals)."""
    from overstap.bootstrap import HubContext
    from overstap.cli.progress import progress_bar
    from overstap.domain.errors import RetryableDeliveryError
    from overstap.domain.identifiers import BrinVestiging
    from overstap.runtime.wiring import sis_connector
    from overstap.services.sis_sources import run_pull

    ctx = HubContext.open()
    try:
        location = str(BrinVestiging.parse(school))
        with progress_bar(f"pulling {location}") as advance:
            report = run_pull(ctx, location, sis_connector, progress=advance)
    except (InvalidRecord, RetryableDeliveryError) as exc:
        raise _fail(str(exc)) from None
    finally:
        ctx.close()
    if report.export_unchanged:
        console.print(f"{location}: the export has not changed since the last pull; nothing to do")
        return
    console.print(
        f"{location}: {report.records_in:,} records: {report.created:,} new, "
        f"{report.updated:,} changed, {report.unchanged:,} unchanged, "
        f"{report.quarantined:,} quarantined (pull {report.pull_id})"
    )
    for rule, count in report.reasons.most_common():
        where = ", ".join(report.examples.get(rule, []))
        console.print(escape(f"  {rule}: {count} (e.g. {where})"), highlight=False)
    if report.quarantined:
        raise typer.Exit(1)


@outbox_app.command("list")
def outbox_list(
    state: Annotated[
        str | None,
        typer.Option(help="Only this state: queued, sending, retry_wait, delivered, dead_letter."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
) -> None:
    """Counts per state, then the messages (ids, recipients, attempts, last error; no content)."""
    from datetime import UTC, datetime

    from rich.table import Table

    from overstap.bootstrap import HubContext
    from overstap.domain.delivery import DeliveryState
    from overstap.store.outbox import Outbox

    try:
        chosen = DeliveryState(state) if state else None
    except ValueError:
        known = ", ".join(s.value for s in DeliveryState)
        raise _fail(f"--state must be one of {known}") from None
    ctx = HubContext.open()
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        box = Outbox(conn, datetime.now(UTC))
        counts = box.counts()
        rows = box.listing(state=chosen, limit=limit)
    console.print(
        "  ".join(f"{s.value}: {counts.get(s.value, 0):,}" for s in DeliveryState), highlight=False
    )
    table = Table("message id", "object", "to", "via", "state", "tries", "next try", "last error")
    for r in rows:
        table.add_row(
            r["message_id"],
            r["object_ref"],
            r["recipient"],
            r["transport"],
            r["state"],
            str(r["attempts"]),
            str(r["next_attempt_at"])[:19] if r["state"] == "retry_wait" else "",
            escape((r["last_error"] or "")[:60]),
        )
    console.print(table)


@outbox_app.command("replay")
def outbox_replay(message_id: str) -> None:
    """Send a dead-lettered message again, with the same MessageID (the receiver deduplicates)."""
    from overstap.bootstrap import HubContext
    from overstap.domain.errors import InvalidTransition
    from overstap.services.delivery import replay

    ctx = HubContext.open()
    try:
        replay(ctx, message_id)
    except KeyError:
        raise _fail(f"no message {message_id} in the outbox") from None
    except InvalidTransition as exc:
        raise _fail(f"{message_id} cannot be replayed: {exc}") from None
    console.print(f"{message_id}: queued again (same MessageID)")


@outbox_app.command("send")
def outbox_send(
    recipient: Annotated[str, typer.Option(help="Institution BRIN whose due messages to send.")],
) -> None:
    """One delivery round to one institution now (what the delivery DAG runs per institution)."""
    from overstap.bootstrap import HubContext
    from overstap.runtime.wiring import delivery_transport
    from overstap.services.delivery import deliver_due, route_for

    ctx = HubContext.open()
    route = route_for(ctx, recipient)
    report = deliver_due(ctx, route, delivery_transport(route.transport))
    console.print(
        f"{recipient}: {report.claimed} due, {report.delivered} delivered, "
        f"{report.retrying} to retry, {report.dead_letter} dead letters"
    )
    for message_id, detail in report.details.items():
        console.print(escape(f"  {message_id}: {detail}"), highlight=False)
    if report.dead_letter:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 0,
) -> None:
    """Serve the SOAP status intake (MeldStatus, mutual TLS) until Ctrl-C."""
    import threading

    from overstap.bootstrap import HubContext
    from overstap.runtime.wiring import status_server

    ctx = HubContext.open()
    try:
        with status_server(ctx, host, port) as server:
            console.print(f"status intake listening on {server.url}", highlight=False)
            try:
                # The server runs in its own thread; this one only waits for SIGINT, which
                # interrupts the wait with KeyboardInterrupt. Leaving `with` stops the server.
                threading.Event().wait()
            except KeyboardInterrupt:
                console.print("stopping")
    finally:
        ctx.close()


@report_app.command("school")
def report_school(
    location: Annotated[str, typer.Argument(help="School location, BRIN + vestiging (12AB00).")],
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Also write the list as CSV.")
    ] = None,
) -> None:
    """Every leaving-year student of the school and where their registrations stand; those not
    in sight (no registration at all) first."""
    from rich.table import Table

    from overstap.bootstrap import HubContext
    from overstap.domain.identifiers import BrinVestiging
    from overstap.services.reports import NIET_IN_BEELD, school_csv, school_report

    try:
        loc = str(BrinVestiging.parse(location))
    except InvalidRecord as exc:
        raise _fail(str(exc)) from None
    ctx = HubContext.open()
    lines = school_report(ctx, loc)
    table = Table("leerlingid", "naam", "gemeente", "stand", "sinds", "aanmeldingen", title=loc)
    for line in lines:
        style = "bold red" if line.standing == NIET_IN_BEELD else None
        table.add_row(
            escape(line.leerlingid), escape(line.name), line.gemeente, line.standing,
            line.since.isoformat() if line.since else "", escape(line.registrations), style=style,
        )  # fmt: skip
    console.print(table)
    missing = sum(line.standing == NIET_IN_BEELD for line in lines)
    console.print(f"{len(lines)} leaving-year students, {missing} niet in beeld")
    if csv_out is not None:
        csv_out.write_text(school_csv(lines), encoding="utf-8")
        console.print(f"written to {csv_out}")


@report_app.command("region")
def report_region(
    code: Annotated[str, typer.Argument(help="Doorstroompunt region code, e.g. MC20.")],
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Also write the counts as CSV.")
    ] = None,
) -> None:
    """Leaving-year residents of the region per municipality, counted by standing."""
    from rich.table import Table

    from overstap.bootstrap import HubContext
    from overstap.services.reports import NIET_IN_BEELD, region_csv, region_report

    ctx = HubContext.open()
    lines = region_report(ctx, code.strip().upper())
    if not lines:
        raise _fail(f"no municipalities in region {code}")
    standings = [
        "niet_in_beeld",
        "ingeschreven",
        "overeenkomst_aangeboden",
        "ontvangen",
        "niet_tot_inschrijving",
        "ingetrokken",
        "uitgeschreven",
    ]
    table = Table("gemeente", "leerlingen", *standings, title=code.upper())
    for line in lines:
        table.add_row(
            f"{line.gemeente} {escape(line.name)}", str(line.students),
            *(str(line.counts.get(s, 0)) for s in standings),
        )  # fmt: skip
    console.print(table)
    total = sum(line.counts.get(NIET_IN_BEELD, 0) for line in lines)
    console.print(
        f"{sum(line.students for line in lines)} leaving-year residents, {total} niet in beeld"
    )
    if csv_out is not None:
        csv_out.write_text(region_csv(lines), encoding="utf-8")
        console.print(f"written to {csv_out}")


@web_app.command("serve")
def web_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8180,
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark the session cookie Secure (behind an HTTPS proxy).")
    ] = False,
) -> None:
    """Serve the audit web view until Ctrl-C (in Airflow it is mounted at /overstap)."""
    import uvicorn

    from overstap.web.app import create_app

    uvicorn.run(create_app(secure_cookies=secure_cookies), host=host, port=port, log_level="info")


@web_app.command("adduser")
def web_adduser(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="auditor (reads) or admin (reads, signs checkpoints).")],
    password_env: Annotated[
        str | None,
        typer.Option(help="Read the password from this environment variable (else a prompt)."),
    ] = None,
) -> None:
    """Add or replace a web account (the password is stored as a scrypt hash only)."""
    from overstap.web.accounts import Accounts

    settings = _settings()
    if password_env is not None:
        password = os.environ.get(password_env, "")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        Accounts(settings.home / "web-users.json").add(name, role, password)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"account {escape(name)} ({role}) saved")


_SIGNAL_DATE = typer.Option(
    "--date", help="The signal date YYYY-MM-DD (default: today); rules look at that day."
)


def _signal_day(text: str | None) -> date:
    from datetime import date

    try:
        return date.fromisoformat(text) if text else date.today()
    except ValueError:
        raise _fail("--date must be a date written YYYY-MM-DD") from None


def _print_plan(plan: SignalPlan, title: str) -> None:
    from rich.table import Table

    from overstap.domain.states import SignalKind

    kinds = [k.value for k in SignalKind] + ["intrekking"]
    table = Table("gemeente", *kinds, title=title)
    for gemeente, counts in plan.per_municipality().items():
        table.add_row(gemeente, *(str(counts.get(k, 0) or "") for k in kinds))
    console.print(table)
    skipped = sum(plan.out_of_remit.values())
    console.print(
        f"cohorts {', '.join(plan.cohorts) or '(none in their signal window)'}: "
        f"{len(plan.raises)} to raise, {len(plan.withdrawals)} to withdraw"
        + (f", {skipped} not followed (23 or older, or a startkwalificatie)" if skipped else "")
    )
    unrouted = sorted({s.gemeente for s in plan.raises if s.regio is None})
    if unrouted:
        err.print(
            f"[yellow]not in the registry, no route yet:[/] {', '.join(unrouted)} "
            "(the signals are kept and shown in the outbox once a route exists)"
        )


@signals_app.command("preview")
def signals_preview(date_: Annotated[str | None, _SIGNAL_DATE] = None) -> None:
    """What a run on that date would raise and withdraw, per municipality; sends and writes
    nothing."""
    from overstap.bootstrap import HubContext
    from overstap.services.signals import plan_signals

    day = _signal_day(date_)
    _print_plan(plan_signals(HubContext.open(), day), f"signals on {day} (preview)")


@signals_app.command("run")
def signals_run(
    date_: Annotated[str | None, _SIGNAL_DATE] = None,
    files: Annotated[
        bool,
        typer.Option(
            "--files/--no-files",
            help="Also queue one signed, encrypted file per municipality in the outbox "
            "(`overstap outbox send` delivers them).",
        ),
    ] = True,
) -> None:
    """Raise and withdraw the signals of that date (each in the audit chain), then queue the
    files for the municipalities."""
    from overstap.bootstrap import HubContext
    from overstap.pki.devca import passphrase_from
    from overstap.services.signal_files import queue_with_hub_pki
    from overstap.services.signals import run_signals

    day = _signal_day(date_)
    ctx = HubContext.open()
    _print_plan(run_signals(ctx, day), f"signals on {day}")
    if not files:
        return
    # Raised signals are committed already: if the files cannot be made now (no PKI yet), they
    # wait and go out with the next run that can.
    report = queue_with_hub_pki(ctx, day, passphrase_from(ctx.settings.pki_dir, os.environ))
    counts = report.counts()
    console.print(
        f"files queued: {counts['files']} ({counts['signals']} signals, "
        f"{counts['withdrawals']} withdrawals)"
    )
    if report.no_route:
        err.print(
            "[yellow]no delivery route, waiting:[/] "
            + ", ".join(f"{g} ({n})" for g, n in report.no_route.items())
        )


@app.command()
def demo(
    students: Annotated[int, typer.Option(min=1, help="Students in the synthetic region.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed of the region.")] = 2026,
) -> None:
    """Run a synthetic region's school year through Airflow on embedded defaults, and compare
    the hub's end state with the region's known truth (in $OVERSTAP_HOME/demo, made afresh)."""
    from overstap.cli.progress import progress_bar
    from overstap.runtime.demo import run_demo

    code = run_demo(console, students=students, seed=seed, progress_bar=progress_bar)
    raise typer.Exit(code)


def _settings() -> Settings:
    from overstap.config import Settings

    return Settings.from_env()


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        err.print(f"[bold red]configuration error:[/] {escape(str(exc))}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
