"""Export the audit records of a date range for auditors, verifiable offline.

The export runs from a signed checkpoint (or the start of the chain) to a signed checkpoint, so
every exported record sits between two points the hub signed; a checkpoint of the current head
is made first when none covers the range's end. The directory holds:

- `records.jsonl`: one record per line, a JSON array in hash order plus its hash (RecordRow);
- `checkpoint-<seq>.txt` and `.sig`: each checkpoint in the range and its detached signature;
- `export.txt` and `export.sig`: what the export holds (dates, first and last record), signed;
- `hub-signing.pem` (the signing certificate) and `ca-bundle.pem` (the trust bundle);
- `verify_export.py` (overstap.audit.offline_verify, standard library and openssl) and
  `PROCEDURE.md`: how to check it with standard tools.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select

from overstap.audit import offline_verify
from overstap.audit.chain import timestamp
from overstap.audit.checkpoint import payload
from overstap.bootstrap import HubContext
from overstap.errors import ConfigurationError
from overstap.services.audit_checkpoints import make_checkpoint, stored_checkpoints
from overstap.store.audit_log import RECORD_COLUMNS
from overstap.store.tables import audit_event
from overstap.xml.dsig import Signer

EXPORT_FORMAT = "overstap-audit-export/1"

PROCEDURE = """# Verifying this audit export

You need Python 3 and `openssl`; nothing from Overstap.

1. Compare `ca-bundle.pem` with the Overstap CA certificates you received separately (their
   fingerprints: `openssl x509 -noout -fingerprint -sha256 -in ca-bundle.pem`).
2. Run `python3 verify_export.py .` in this directory. It prints `OK` or the first problem.

What it checks, step by step, so you can repeat any step by hand:
- `openssl verify -CAfile ca-bundle.pem hub-signing.pem`: the hub's signing certificate.
- `openssl x509 -pubkey -noout -in hub-signing.pem > hub.pub`, then for every checkpoint and for
  `export.txt`: `openssl dgst -sha256 -verify hub.pub -signature checkpoint-N.sig checkpoint-N.txt`.
  A checkpoint states the hash of record N; record N's hash covers every record before it.
- `records.jsonl`: each line is [seq, at, actor, action, object_kind, object_ref, result, origin,
  detail, prev_hash, hash]. The hash is SHA-256 of the first ten fields as a compact JSON array
  (`json.dumps(row[:10], separators=(",", ":"), ensure_ascii=False)`, UTF-8); prev_hash is the
  hash of the record before. The first record follows a signed checkpoint (or the chain's start,
  a hash of 64 zeros), the last one is a signed checkpoint, and `export.txt` states both.

Records hold pseudonyms (`ps1_...`), ids and counts: no personal numbers.
"""


@dataclass(frozen=True, slots=True)
class ExportReport:
    directory: Path
    first: int
    last: int
    checkpoints: int


def export_audit(
    ctx: HubContext,
    start: date,
    end: date,
    out: Path,
    *,
    signer: Signer,
    ca_bundle: Path,
    now: datetime | None = None,
) -> ExportReport:
    """Write the export of the records made from `start` to `end` (both days included)."""
    if end < start:
        raise ConfigurationError("--to", "must not be before --from")
    moment = now or datetime.now(UTC)
    make_checkpoint(ctx, signer, now=moment)  # the range's end is covered by a signature
    low = timestamp(datetime.combine(start, time(), tzinfo=UTC))
    high = timestamp(datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC))
    with ctx.engine.connect().execution_options(read_only=True) as conn:
        s1, s2 = conn.execute(
            select(func.min(audit_event.c.seq), func.max(audit_event.c.seq)).where(
                audit_event.c.at >= low, audit_event.c.at < high
            )
        ).one()
        if s1 is None:
            raise ConfigurationError("--from/--to", f"no audit records from {start} to {end}")
        signed = stored_checkpoints(conn)
        first = max((c.checkpoint.seq for c in signed if c.checkpoint.seq < s1), default=0) + 1
        last = min(c.checkpoint.seq for c in signed if c.checkpoint.seq >= s2)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "records.jsonl").open("w", encoding="utf-8") as f:
            rows = conn.execution_options(yield_per=5000).execute(
                select(*RECORD_COLUMNS)
                .where(audit_event.c.seq >= first, audit_event.c.seq <= last)
                .order_by(audit_event.c.seq)
            )
            for row in rows:
                f.write(json.dumps(list(row), ensure_ascii=False) + "\n")
    included = [c for c in signed if first - 1 <= c.checkpoint.seq <= last]
    for c in included:
        if c.checkpoint.seq == 0:
            continue
        (out / f"checkpoint-{c.checkpoint.seq}.txt").write_bytes(payload(c.checkpoint))
        (out / f"checkpoint-{c.checkpoint.seq}.sig").write_bytes(c.signature)
    statement = (
        f"{EXPORT_FORMAT}\nfrom: {start}\nto: {end}\nfirst: {first}\nlast: {last}\n"
    ).encode("ascii")
    (out / "export.txt").write_bytes(statement)
    (out / "export.sig").write_bytes(signer.sign_bytes(statement))
    (out / "hub-signing.pem").write_bytes(signer.certificate.public_bytes(Encoding.PEM))
    shutil.copyfile(ca_bundle, out / "ca-bundle.pem")
    shutil.copyfile(offline_verify.__file__, out / "verify_export.py")
    (out / "PROCEDURE.md").write_text(PROCEDURE, encoding="utf-8")
    return ExportReport(out, first, last, len(included))
