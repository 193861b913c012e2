"""The audit hash chain, as pure functions over records (no database here).

Each record's hash covers its own fields and the previous record's hash, so changing, inserting or
removing any record breaks every hash after it; `verify_records` names the first broken record.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from overstap.domain.identifiers import elfproef_remainder

GENESIS_HASH = "0" * 64
# Bounded by non-alphanumerics so a run of digits inside a hex pseudonym or hash never matches.
_NINE_DIGITS = re.compile(r"(?<![0-9A-Za-z])[0-9]{9}(?![0-9A-Za-z])")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened: who (actor), what (action), to which object, with what result, from where.

    `object_ref` is a pseudonym (`ps1_...`) for a person, or a public id (dossier id, BRIN, file
    digest) for anything else. `detail` holds counts and ids only, never personal data.
    """

    actor: str
    action: str
    object_kind: str
    object_ref: str
    result: str = "ok"
    origin: str = "hub"
    detail: Mapping[str, Any] = field(default_factory=dict)
    # The canonical JSON of `detail`, made once: the personal-number check scans exactly the text
    # that `seal` hashes and stores (and encoding it twice cost a tenth of reconciliation).
    detail_text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail_text", canonical_detail(self.detail))
        refuse_personal_numbers(self)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    action: str
    object_kind: str
    object_ref: str
    result: str
    origin: str
    detail: str  # canonical JSON text, exactly as hashed
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    count: int
    head_seq: int
    head_hash: str
    problem: ChainProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


# json.dumps builds a new JSONEncoder per call when given options; this one is built once. Its
# encode() is exactly what json.dumps(detail, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False, default=str) calls, so the text (and every hash over it) is unchanged.
_DETAIL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)


def canonical_detail(detail: Mapping[str, Any]) -> str:
    if type(detail) is dict and not detail:
        return "{}"  # the encoder's answer for an empty dict, without running it
    return _DETAIL_ENCODER.encode(detail)


def timestamp(now: datetime) -> str:
    """UTC with microseconds and a Z: one text form, so the hash does not depend on the backend."""
    if now.tzinfo is None:
        raise ValueError("audit time must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# A record as stored, in hash order plus its own hash: (seq, at, actor, action, object_kind,
# object_ref, result, origin, detail, prev_hash, hash). Verifying from these tuples skips building
# an AuditRecord per row, which cost as much as the hashing itself.
RecordRow = tuple[int, str, str, str, str, str, str, str, str, str, str]


def record_hash(
    seq: int,
    at: str,
    actor: str,
    action: str,
    object_kind: str,
    object_ref: str,
    result: str,
    origin: str,
    detail: str,
    prev_hash: str,
) -> str:
    return hashlib.sha256(
        _payload(
            (seq, at, actor, action, object_kind, object_ref, result, origin, detail, prev_hash)
        ).encode("utf-8")
    ).hexdigest()


def _payload(row: Sequence[Any]) -> str:
    """The hashed text of a record (its first ten fields, in `RecordRow` order): a JSON array,
    byte for byte `json.dumps(list(row[:10]), separators=(",", ":"), ensure_ascii=False)`.

    A JSON array keeps field boundaries unambiguous ("ab","c" never hashes like "a","bc").
    Written out because json.dumps builds a new encoder per call and was three times slower, and
    every verify hashes every record. `encode_basestring` is the function json itself uses for
    strings when ensure_ascii=False, and str() of an int is its JSON form. Anything else (NULL or
    a number where text belongs, a bool seq: only seen in a tampered row) goes to json.dumps, so
    the bytes never differ from the original format.
    """
    seq = row[0]
    if type(seq) is int:
        enc = encode_basestring
        try:
            return (
                f"[{seq},{enc(row[1])},{enc(row[2])},{enc(row[3])},{enc(row[4])},"
                f"{enc(row[5])},{enc(row[6])},{enc(row[7])},{enc(row[8])},{enc(row[9])}]"
            )
        except TypeError:  # a field that is not text
            pass
    return json.dumps(list(row[:10]), separators=(",", ":"), ensure_ascii=False)


def seal(event: AuditEvent, *, seq: int, at: datetime, prev_hash: str) -> AuditRecord:
    """The record that follows `prev_hash` in the chain."""
    return seal_at(event, seq=seq, at=timestamp(at), prev_hash=prev_hash)


def seal_at(event: AuditEvent, *, seq: int, at: str, prev_hash: str) -> AuditRecord:
    """`seal` with the time already in its stored form (`timestamp`): a batch appended in one
    transaction shares one time, and formatting it once per batch saves a strftime per record."""
    return AuditRecord(*seal_row(event, seq=seq, at=at, prev_hash=prev_hash))


def seal_row(event: AuditEvent, *, seq: int, at: str, prev_hash: str) -> RecordRow:
    """`seal_at` as a `RecordRow`: the stored columns in order, what a bulk append inserts."""
    fields = (
        seq,
        at,
        event.actor,
        event.action,
        event.object_kind,
        event.object_ref,
        event.result,
        event.origin,
        event.detail_text,
        prev_hash,
    )
    return (*fields, hashlib.sha256(_payload(fields).encode("utf-8")).hexdigest())


def recompute(record: AuditRecord) -> str:
    return record_hash(
        record.seq,
        record.at,
        record.actor,
        record.action,
        record.object_kind,
        record.object_ref,
        record.result,
        record.origin,
        record.detail,
        record.prev_hash,
    )


def verify_records(records: Iterable[AuditRecord]) -> ChainReport:
    """Walk the chain in seq order; stop at the first record that does not hold."""
    return verify_rows(
        (
            r.seq,
            r.at,
            r.actor,
            r.action,
            r.object_kind,
            r.object_ref,
            r.result,
            r.origin,
            r.detail,
            r.prev_hash,
            r.hash,
        )
        for r in records
    )


def verify_rows(rows: Iterable[RecordRow]) -> ChainReport:
    """`verify_records` over stored rows (see `RecordRow`), the form the database returns.

    Runs once per record of the whole chain: hashes the row as it comes (`record_hash` and this
    share `_payload`).
    """
    sha256 = hashlib.sha256
    # Every record before `expected_seq` held, so the count verified is expected_seq - 1 and the
    # last good hash is expected_prev: no separate counters to keep per record.
    expected_prev = GENESIS_HASH
    expected_seq = 1
    for row in rows:
        seq = row[0]
        if seq != expected_seq:
            what = "missing" if seq > expected_seq else "duplicated or out of order"
            return ChainReport(
                expected_seq - 1,
                expected_seq - 1,
                expected_prev,
                ChainProblem(expected_seq, f"{what}: found seq {seq} where {expected_seq} belongs"),
            )
        if row[9] != expected_prev:
            return ChainReport(
                seq - 1,
                seq - 1,
                expected_prev,
                ChainProblem(seq, "prev_hash does not match the hash of the record before it"),
            )
        if sha256(_payload(row).encode("utf-8")).hexdigest() != row[10]:
            return ChainReport(
                seq - 1,
                seq - 1,
                expected_prev,
                ChainProblem(seq, "content does not match its hash (record altered)"),
            )
        expected_prev = row[10]
        expected_seq += 1
    return ChainReport(expected_seq - 1, expected_seq - 1, expected_prev, None)


def refuse_personal_numbers(event: AuditEvent) -> None:
    """Defence in depth: an audit field that holds a number passing the BSN elfproef is a bug.

    Onderwijsnummers (prefix 10, remainder 5) are caught too. Counts and ids are fine; they are
    not nine-digit strings that pass a personal-number check.
    """
    # One scan over all fields joined by a newline instead of one per field: a newline is not
    # alphanumeric, so a match never spans two fields and every field boundary still counts as
    # one for the pattern; the same numbers are found.
    text = "\n".join(
        (
            event.actor,
            event.action,
            event.object_kind,
            event.object_ref,
            event.result,
            event.origin,
            event.detail_text,
        )
    )
    for match in _NINE_DIGITS.finditer(text):
        digits = match.group(0)
        rem = elfproef_remainder(digits)
        if (rem == 0 and digits != "000000000") or (digits.startswith("10") and rem == 5):
            raise ValueError(
                f"audit event {event.action!r} holds what looks like a personal number; "
                "use the pseudonym"
            )
