"""Status intake by SFTP: status files an institution leaves in its outbox folder.

Institutions that cannot host SOAP put `statusmeldingen` documents (xsd/status.xsd, an
enveloped signature by the institution, optionally CMS-encrypted to the hub as `.p7m`) in an
outbox folder; the hub polls it (`StatusInbox`), takes each file in and moves it to the archive
folder. Per file, in this order:

1. a file whose sha256 was taken in before is a duplicate: archived, nothing else. The ledger
   is the audit chain itself (object kind `status_file`, object ref the sha256; indexed), so
   no table of its own is needed; reconcile's berichtid deduplication stays the second net
   (a re-signed or re-encrypted copy of the same reports has another sha256);
2. `.p7m`: decrypted with the hub's encryption key;
3. the hardened parse; the signature, with the institution's OIN as the only acceptable
   signer; the document (without its signature) against status.xsd;
4. `reports(root, sender=<the route's BRIN>)`, reconciled with channel "sftp".

A file that fails 2 or 3 is rejected with its rule: in the report, in the audit chain, and
archived with a `.rejected` suffix, so the institution (and a person at the hub) sees it was
looked at and refused, while it never blocks the files behind it. Rules, counts and digests
only: no file content reaches logs, errors or the audit chain.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from lxml import etree  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mappings.status_xml import Refused, reports
from overstap.audit.chain import AuditEvent
from overstap.bootstrap import HubContext
from overstap.crypto.cms import Recipient, decrypt
from overstap.crypto.trust import TrustStore
from overstap.domain.errors import ConfigurationError, InvalidRecord
from overstap.domain.identifiers import Brin, Oin
from overstap.domain.registration import StatusReport
from overstap.pki import PkiLayout, passphrase_from
from overstap.pki.load import load_certificate, load_private_key
from overstap.ports import Route
from overstap.services.reconcile import ReconcileReport, reconcile
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.tables import audit_event, delivery_route, mbo_institution
from overstap.xml.dsig import DSIG_NS, Verifier
from overstap.xml.safe import parse_untrusted
from overstap.xml.schemas import validate

__all__ = [
    "ACTOR",
    "REJECTED_SUFFIX",
    "HubKeys",
    "InboxFile",
    "IntakeReport",
    "StatusInbox",
    "sftp_recipients",
    "take_in",
]

ACTOR = "overstap status files"
REJECTED_SUFFIX = ".rejected"
_OBJECT_KIND = "status_file"
_ACTION = "status.file"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboxFile:
    """One file from an institution's outbox folder: its plain name and exact bytes, or - when
    it is larger than the inbox reads (`too_large`: its size) - no bytes at all."""

    name: str
    data: bytes
    too_large: int | None = None


class StatusInbox(Protocol):
    """Where an institution's status files wait (an SFTP folder: `connectors.sftp_inbox`).

    Failures to reach it raise `RetryableDeliveryError`; bad settings `ConfigurationError`.
    `archive` moves named files out of the way, each name with `suffix` appended.
    """

    def pending(self, route: Route) -> list[InboxFile]: ...

    def archive(self, route: Route, names: Sequence[str], *, suffix: str = "") -> None: ...


@dataclass
class IntakeReport:
    recipient: str
    files: int = 0
    processed: int = 0
    duplicates: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # file name -> rule
    refused_reports: int = 0  # single statusmeldingen refused (mappings.status_xml)
    outcomes: Counter[str] = field(default_factory=Counter)  # reconcile outcomes

    def counts(self) -> dict[str, int | str]:
        """For task logs and XCom: counts and the institution only."""
        return {
            "recipient": self.recipient,
            "files": self.files,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "refused_reports": self.refused_reports,
            **{f"outcome_{k}": v for k, v in sorted(self.outcomes.items())},
        }


@dataclass(frozen=True)
class HubKeys:
    """What the hub needs to open and check files: its decryption key and the trust store."""

    recipient: Recipient
    verifier: Verifier

    @classmethod
    def load(cls, pki_dir: Path, passphrase: bytes) -> HubKeys:
        layout = PkiLayout(pki_dir)
        return cls(
            Recipient(
                load_certificate(layout.cert_path("hub", "enc")),
                load_private_key(layout.key_path("hub", "enc"), passphrase),
            ),
            Verifier(TrustStore.from_pem_file(layout.trust_bundle_path)),
        )


class _Rejected(Exception):
    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


def take_in(
    ctx: HubContext,
    route: Route,
    inbox: StatusInbox,
    *,
    keys: HubKeys | None = None,
    now: datetime | None = None,
) -> IntakeReport:
    """Take in every pending status file of `route`'s institution; see the module docstring.

    `keys` default to the hub's own in `ctx.settings.pki_dir` (passphrase from the
    environment). A file's reports and its audit record are two transactions (reconcile
    commits its own); files are archived after both. A crash in between leaves the file in the
    outbox: the next poll knows it by its digest, or, before the audit record, reconciles it
    again and reconcile finds every report a duplicate by berichtid.
    """
    moment = now or datetime.now(UTC)
    report = IntakeReport(route.recipient)
    sender = Brin.parse(route.recipient)
    oin = _institution_oin(ctx, route)
    files = inbox.pending(route)
    report.files = len(files)
    if not files:
        return report
    if keys is None:
        pki_dir = ctx.settings.pki_dir
        keys = HubKeys.load(pki_dir, passphrase_from(pki_dir, os.environ))
    done: list[str] = []
    rejected: list[str] = []
    for item in files:
        if item.too_large is not None:
            # Never read whole: refused on its size, known in the chain by its name's digest
            # (no content was read to hash), and moved aside like any rejected file.
            digest = hashlib.sha256(item.name.encode("utf-8")).hexdigest()
            report.rejected[item.name] = "STATUS-FILE-TOO-LARGE"
            _audit(ctx, moment, route, digest, result="rejected",
                   detail={"rule": "STATUS-FILE-TOO-LARGE", "bytes": item.too_large})  # fmt: skip
            log.warning("status file from %s rejected [STATUS-FILE-TOO-LARGE] %d bytes",
                        route.recipient, item.too_large)  # fmt: skip
            rejected.append(item.name)
            continue
        digest = hashlib.sha256(item.data).hexdigest()
        if _seen(ctx, digest):
            report.duplicates += 1
            done.append(item.name)
            continue
        try:
            root = _opened(item, keys, oin)
        except _Rejected as exc:
            report.rejected[item.name] = exc.rule
            _audit(ctx, moment, route, digest, result="rejected", detail={"rule": exc.rule})
            # The digest, not the name: a file name is the institution's choice and may say
            # more than it should.
            log.warning(
                "status file from %s rejected [%s] sha256 %s",
                route.recipient,
                exc.rule,
                digest[:16],
            )
            rejected.append(item.name)
            continue
        taken: list[StatusReport] = []
        refused: list[Refused] = []
        for entry in reports(root, sender=sender):
            if isinstance(entry, Refused):
                refused.append(entry)
            else:
                taken.append(entry)
        result = _reconcile(ctx, taken, moment)
        report.processed += 1
        report.refused_reports += len(refused)
        report.outcomes.update(result.outcomes)
        _audit(
            ctx,
            moment,
            route,
            digest,
            result="processed",
            detail={
                "reports": len(taken),
                "refused": len(refused),
                "refused_rules": dict(Counter(r.error.rule for r in refused)),
                "outcomes": dict(result.outcomes),
            },
        )
        done.append(item.name)
    # Archived last and per kind: a failure here (retryable) leaves files that the next poll
    # recognises by their digest, so nothing is taken in twice.
    if done:
        inbox.archive(route, done)
    if rejected:
        inbox.archive(route, rejected, suffix=REJECTED_SUFFIX)
    log.info(
        "status files from %s: %d files, %d processed, %d duplicates, %d rejected",
        route.recipient,
        report.files,
        report.processed,
        report.duplicates,
        len(report.rejected),
    )
    return report


def sftp_recipients(ctx: HubContext) -> list[str]:
    """Registered institutions whose route is SFTP: their status files wait in their folder."""
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        rows = conn.execute(
            select(delivery_route.c.brin)
            .join(mbo_institution, mbo_institution.c.brin == delivery_route.c.brin)
            .where(delivery_route.c.transport == "sftp")
            .order_by(delivery_route.c.brin)
        )
        return [r.brin for r in rows]


def _institution_oin(ctx: HubContext, route: Route) -> Oin:
    """The only party whose signature the institution's files may carry."""
    configured = route.settings.get("oin")
    if configured:
        return Oin.parse(str(configured))
    with ctx.engine.connect() as conn:
        found = conn.execute(
            select(mbo_institution.c.oin).where(mbo_institution.c.brin == route.recipient)
        ).scalar_one_or_none()
    if found is None:
        raise ConfigurationError(
            f"status intake {route.recipient}", "is not a registered institution"
        )
    return Oin.parse(found)


def _reconcile(ctx: HubContext, taken: list[StatusReport], moment: datetime) -> ReconcileReport:
    if not taken:
        return ReconcileReport()
    try:
        return reconcile(ctx, taken, channel="sftp", now=moment)
    except IntegrityError:
        # The same berichtid arriving at once by SOAP: the other transaction recorded it
        # first. Once more, and those reports are duplicates now.
        return reconcile(ctx, taken, channel="sftp", now=moment)


def _opened(item: InboxFile, keys: HubKeys, oin: Oin) -> etree._Element:
    """The verified, schema-valid document of one file, or `_Rejected` with the rule."""
    data = item.data
    try:
        if item.name.endswith(".p7m"):
            data = decrypt(data, keys.recipient, source="status file")
        root = parse_untrusted(data, source="status file")
        keys.verifier.verify(root, expected_oin=oin, source="status file")
    except InvalidRecord as exc:
        # CmsError, UnsafeXml, SignatureRejected, UntrustedCertificate: each carries its rule.
        raise _Rejected(exc.rule) from None
    # status.xsd does not know ds:Signature: validate what was signed, without the signature.
    unsigned = copy.deepcopy(root)
    for sig in unsigned.findall(f"{{{DSIG_NS}}}Signature"):
        unsigned.remove(sig)
    violations = validate(unsigned, "status")
    if violations:
        raise _Rejected(f"XSD:{violations[0].rule}")
    return root


def _seen(ctx: HubContext, digest: str) -> bool:
    with ctx.engine.connect() as conn:
        return (
            conn.execute(
                select(audit_event.c.seq)
                .where(audit_event.c.object_kind == _OBJECT_KIND)
                .where(audit_event.c.object_ref == digest)
                .where(audit_event.c.result == "processed")
                .limit(1)
            ).first()
            is not None
        )


def _audit(
    ctx: HubContext,
    moment: datetime,
    route: Route,
    digest: str,
    *,
    result: str,
    detail: dict[str, object],
) -> None:
    with ctx.engine.begin() as conn:
        AuditLog(conn, fixed_clock(moment)).append(
            AuditEvent(
                ACTOR,
                _ACTION,
                _OBJECT_KIND,
                digest,
                result=result,
                origin=f"sftp:{route.recipient}",
                detail=detail,
            )
        )
