"""Signed checkpoints of the audit chain: make one, and verify the chain with its checkpoints.

A checkpoint is the chain head (seq, hash, time) signed by the hub's signing key
(overstap.audit.checkpoint for the exact bytes). It is made periodically by a DAG and before an
export. Verifying the stored chain means:
- every record holds (overstap.store.audit_log.AuditLog.verify);
- every checkpoint's signature holds, by a certificate of our trust bundle that carries the hub's
  OIN;
- every checkpoint meets the chain: the record at its seq carries its hash. A chain cut below a
  checkpoint, or altered and re-hashed by someone without the hub's key, is caught here even
  when its own hashes are consistent.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Connection, insert, select

from overstap.audit.chain import ChainProblem, ChainReport, timestamp
from overstap.audit.checkpoint import Checkpoint, payload
from overstap.bootstrap import HubContext
from overstap.crypto.trust import TrustStore, Usage
from overstap.domain.identifiers import Oin
from overstap.errors import InvalidRecord
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.tables import audit_checkpoint, audit_event
from overstap.xml.dsig import Signer


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: bytes
    certificate: x509.Certificate


def make_checkpoint(
    ctx: HubContext, signer: Signer, *, now: datetime | None = None
) -> SignedCheckpoint | None:
    """Sign the current head, unless it is signed already (nothing new since the last one).
    The checkpoint is not itself a chain record: then an idle chain would gain a record, and a
    new checkpoint, on every run."""
    moment = now or datetime.now(UTC)
    with ctx.engine.begin() as conn:
        log = AuditLog(conn, fixed_clock(moment))
        seq, head = log.head_for_update()
        if conn.execute(
            select(audit_checkpoint.c.seq).where(audit_checkpoint.c.seq == seq)
        ).first():
            return None
        checkpoint = Checkpoint(seq, head, timestamp(moment))
        signature = signer.sign_bytes(payload(checkpoint))
        conn.execute(
            insert(audit_checkpoint).values(
                seq=seq,
                hash=head,
                at=checkpoint.at,
                signature=base64.b64encode(signature).decode("ascii"),
                certificate=signer.certificate.public_bytes(Encoding.PEM).decode("ascii"),
            )
        )
    return SignedCheckpoint(checkpoint, signature, signer.certificate)


def stored_checkpoints(conn: Connection) -> list[SignedCheckpoint]:
    rows = conn.execute(select(audit_checkpoint).order_by(audit_checkpoint.c.seq))
    return [
        SignedCheckpoint(
            Checkpoint(int(r.seq), r.hash, r.at),
            base64.b64decode(r.signature),
            x509.load_pem_x509_certificate(r.certificate.encode("ascii")),
        )
        for r in rows
    ]


def signature_problem(
    signed: SignedCheckpoint, trust: TrustStore, hub_oin: Oin, now: datetime | None = None
) -> str | None:
    """Why this checkpoint's signature does not hold, or None when it does."""
    try:
        trust.validate(
            signed.certificate, usage=Usage.SIGNING, expected_oin=hub_oin, now=now,
            field="checkpoint certificate",
        )  # fmt: skip
    except InvalidRecord as exc:
        return f"certificate not trusted [{exc.rule}]"
    key = signed.certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return "certificate key is not RSA"
    try:
        key.verify(
            signed.signature, payload(signed.checkpoint), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return "signature does not match the checkpoint (altered)"
    return None


@dataclass(frozen=True, slots=True)
class AuditVerification:
    chain: ChainReport
    checkpoints: int
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_with_checkpoints(
    ctx: HubContext, trust: TrustStore, hub_oin: Oin, *, now: datetime | None = None
) -> AuditVerification:
    """The chain, then each checkpoint against its signature and against the chain; the first
    problem is named (by record seq)."""
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        report = AuditLog(conn).verify()
        signed = stored_checkpoints(conn)
        problem = report.problem or _checkpoint_problem(conn, signed, report, trust, hub_oin, now)
    return AuditVerification(report, len(signed), problem)


def _checkpoint_problem(
    conn: Connection,
    signed: Sequence[SignedCheckpoint],
    report: ChainReport,
    trust: TrustStore,
    hub_oin: Oin,
    now: datetime | None,
) -> ChainProblem | None:
    hashes_at = dict(
        conn.execute(
            select(audit_event.c.seq, audit_event.c.hash).where(
                audit_event.c.seq.in_([s.checkpoint.seq for s in signed if s.checkpoint.seq > 0])
            )
        )
        .tuples()
        .all()
    )
    for s in signed:
        cp = s.checkpoint
        why = signature_problem(s, trust, hub_oin, now)
        if why is not None:
            return ChainProblem(cp.seq, f"checkpoint at record {cp.seq}: {why}")
        if cp.seq > report.head_seq:
            return ChainProblem(
                report.head_seq + 1,
                f"the chain ends at record {report.head_seq} but a signed checkpoint covers "
                f"record {cp.seq}: records removed from the end",
            )
        if cp.seq > 0 and hashes_at.get(cp.seq) != cp.hash:
            return ChainProblem(
                cp.seq,
                f"record {cp.seq} does not carry the hash its signed checkpoint states "
                "(the chain was rewritten)",
            )
    return None
