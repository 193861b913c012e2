"""Signed checkpoints of the audit chain: the head (seq and hash) at a moment, in a text form
that anyone can check with standard tools.

The signed bytes are `payload(checkpoint)`: four lines of ASCII, so an auditor can read what was
signed and verify it with `openssl dgst -sha256 -verify hub.pub -signature N.sig N.txt`. A
checkpoint fixes every record up to its seq: the hash of record N covers all records before it,
so changing, inserting or removing any of them - or cutting records off the end below N - no
longer meets the signed hash. Pure functions here; signing and storage live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT = "overstap-audit-checkpoint/1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int  # the last record it covers (0: the empty chain)
    hash: str  # that record's hash
    at: str  # when it was made, the chain's timestamp form (UTC, microseconds, Z)

    def __post_init__(self) -> None:
        if (
            self.seq < 0
            or len(self.hash) != 64
            or not all(c in "0123456789abcdef" for c in self.hash)
        ):
            raise ValueError("a checkpoint has a seq >= 0 and a SHA-256 hex hash")


def payload(checkpoint: Checkpoint) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    return (
        f"{FORMAT}\nseq: {checkpoint.seq}\nhash: {checkpoint.hash}\nat: {checkpoint.at}\n"
    ).encode("ascii")


def parse_payload(data: bytes) -> Checkpoint:
    """The checkpoint a payload states (the inverse of `payload`); ValueError if it is not one."""
    lines = data.decode("ascii").split("\n")
    if len(lines) != 5 or lines[0] != FORMAT or lines[4] != "":
        raise ValueError("not an audit checkpoint payload")
    fields = dict(line.split(": ", 1) for line in lines[1:4])
    checkpoint = Checkpoint(int(fields["seq"]), fields["hash"], fields["at"])
    if payload(checkpoint) != data:
        raise ValueError("not an audit checkpoint payload in its one form")
    return checkpoint
