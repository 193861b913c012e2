"""Verify an audit export on any machine: Python's standard library and the `openssl` command.

This file is copied into every export as `verify_export.py` and run there as
`python3 verify_export.py EXPORT_DIR`; `overstap audit verify --export DIR` runs the same code.
It trusts nothing in the export but the CA bundle the auditor compares with the one they were
given, and the checks are:
1. `hub-signing.pem` chains to `ca-bundle.pem` (`openssl verify`);
2. each `checkpoint-<seq>.txt` carries a valid signature `checkpoint-<seq>.sig` by that
   certificate's key (`openssl dgst -sha256 -verify`);
3. `records.jsonl` is an unbroken chain: consecutive seqs, each record's prev_hash is the hash
   before it, each hash is SHA-256 of the record's first ten fields as a compact JSON array;
4. the chain starts at a signed checkpoint (or the genesis of the chain) and ends at one, and it
   meets every checkpoint in between.
So altering any record, inserting one, dropping one, or cutting the end is detected, and
re-hashing the records does not help without the hub's signing key.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

GENESIS_HASH = "0" * 64
FORMAT = "overstap-audit-checkpoint/1"


def _record_hash(row: list[object]) -> str:
    text = json.dumps(row[:10], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _openssl(openssl: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (fixed tool, arguments are our own file names)
        [openssl, *args], capture_output=True, text=True, timeout=60, check=False
    )


def _checkpoint(text: str) -> tuple[int, str]:
    lines = text.split("\n")
    if len(lines) != 5 or lines[0] != FORMAT or not lines[1].startswith("seq: "):
        raise ValueError("not a checkpoint")
    return int(lines[1][5:]), lines[2].removeprefix("hash: ")


def verify_export(directory: Path, openssl: str = "openssl") -> list[str]:
    """Problems found, in the order checked; an empty list means the export holds."""
    d = Path(directory)
    problems: list[str] = []
    chain = _openssl(
        openssl, "verify", "-CAfile", str(d / "ca-bundle.pem"), str(d / "hub-signing.pem")
    )
    if chain.returncode != 0:
        return [
            f"hub-signing.pem does not chain to ca-bundle.pem: {chain.stdout}{chain.stderr}".strip()
        ]
    checkpoints: dict[int, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pub = Path(tmp) / "hub.pub"
        key = _openssl(openssl, "x509", "-pubkey", "-noout", "-in", str(d / "hub-signing.pem"))
        pub.write_text(key.stdout)
        for txt in sorted(d.glob("checkpoint-*.txt")):
            sig = txt.with_suffix(".sig")
            ok = _openssl(
                openssl, "dgst", "-sha256", "-verify", str(pub), "-signature", str(sig), str(txt)
            )
            if ok.returncode != 0:
                problems.append(f"{txt.name}: signature does not verify")
                continue
            try:
                seq, digest = _checkpoint(txt.read_text(encoding="ascii"))
            except ValueError:
                problems.append(f"{txt.name}: not a checkpoint")
                continue
            if txt.name != f"checkpoint-{seq}.txt":
                problems.append(f"{txt.name}: states seq {seq}")
                continue
            checkpoints[seq] = digest
        # The export's own statement of what it holds, signed like a checkpoint: dropping the
        # newest records together with their checkpoint files leaves a consistent but shorter
        # export, which this catches.
        manifest = d / "export.txt"
        ok = _openssl(openssl, "dgst", "-sha256", "-verify", str(pub), "-signature",
                      str(d / "export.sig"), str(manifest))  # fmt: skip
        if ok.returncode != 0:
            return [*problems, "export.txt: signature does not verify"]
        stated = dict(line.split(": ", 1) for line in manifest.read_text("ascii").splitlines()[1:])
    if problems:
        return problems
    first_stated, last_stated = int(stated["first"]), int(stated["last"])
    expected_seq: int | None = None
    first_seq = 0
    prev = ""
    last = 0
    with (d / "records.jsonl").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            row = json.loads(line)
            seq = row[0]
            if expected_seq is None:  # the first record: it must follow a signed point
                first_seq = seq
                start = seq - 1
                if start == 0:
                    prev = GENESIS_HASH
                elif start in checkpoints:
                    prev = checkpoints[start]
                else:
                    return [f"records.jsonl starts at record {seq}, but no signed checkpoint "
                            f"covers record {start} before it"]  # fmt: skip
            elif seq != expected_seq:
                what = "missing" if seq > expected_seq else "out of order or duplicated"
                return [f"line {number}: record {expected_seq} is {what} (found {seq})"]
            if row[9] != prev:
                return [f"record {seq}: prev_hash does not match the record before it"]
            digest = _record_hash(row)
            if digest != row[10]:
                return [f"record {seq}: content does not match its hash (altered)"]
            if seq in checkpoints and checkpoints[seq] != digest:
                return [f"record {seq}: not the record its signed checkpoint covers"]
            prev, last, expected_seq = digest, seq, seq + 1
    if expected_seq is None:
        return ["records.jsonl holds no records"]
    if (first_seq, last) != (first_stated, last_stated):
        return [f"records.jsonl holds records {first_seq}-{last}, the signed export.txt says "
                f"{first_stated}-{last_stated}"]  # fmt: skip
    if last not in checkpoints:
        return [f"records.jsonl ends at record {last}, which no signed checkpoint covers "
                "(records cut off the end?)"]  # fmt: skip
    beyond = [s for s in checkpoints if s > last]
    if beyond:
        return [f"a signed checkpoint covers record {min(beyond)}, beyond the last exported "
                f"record {last}: records cut off the end"]  # fmt: skip
    return []


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 verify_export.py EXPORT_DIR", file=sys.stderr)
        return 2
    problems = verify_export(Path(argv[1]))
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print("OK: every record holds, between signed checkpoints")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
