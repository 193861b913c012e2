"""The audit hash chain, as pure functions over records (no database here).

Each record's hash covers its own fields and the previous record's hash, so changing, inserting or
removing any record breaks every hash after it; `verify_records` names the first broken record.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
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

    def __post_init__(self) -> None:
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


def canonical_detail(detail: Mapping[str, Any]) -> str:
    return json.dumps(
        detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def timestamp(now: datetime) -> str:
    """UTC with microseconds and a Z: one text form, so the hash does not depend on the backend."""
    if now.tzinfo is None:
        raise ValueError("audit time must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
    # A JSON array keeps field boundaries unambiguous ("ab","c" never hashes like "a","bc").
    payload = json.dumps(
        [seq, at, actor, action, object_kind, object_ref, result, origin, detail, prev_hash],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def seal(event: AuditEvent, *, seq: int, at: datetime, prev_hash: str) -> AuditRecord:
    """The record that follows `prev_hash` in the chain."""
    ts = timestamp(at)
    detail = canonical_detail(event.detail)
    digest = record_hash(
        seq,
        ts,
        event.actor,
        event.action,
        event.object_kind,
        event.object_ref,
        event.result,
        event.origin,
        detail,
        prev_hash,
    )
    return AuditRecord(
        seq,
        ts,
        event.actor,
        event.action,
        event.object_kind,
        event.object_ref,
        event.result,
        event.origin,
        detail,
        prev_hash,
        digest,
    )


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
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    last_hash = GENESIS_HASH
    for rec in records:
        if rec.seq != expected_seq:
            what = "missing" if rec.seq > expected_seq else "duplicated or out of order"
            return ChainReport(
                count,
                expected_seq - 1,
                last_hash,
                ChainProblem(
                    expected_seq, f"{what}: found seq {rec.seq} where {expected_seq} belongs"
                ),
            )
        if rec.prev_hash != expected_prev:
            return ChainReport(
                count,
                rec.seq - 1,
                last_hash,
                ChainProblem(rec.seq, "prev_hash does not match the hash of the record before it"),
            )
        if recompute(rec) != rec.hash:
            return ChainReport(
                count,
                rec.seq - 1,
                last_hash,
                ChainProblem(rec.seq, "content does not match its hash (record altered)"),
            )
        count += 1
        expected_prev = last_hash = rec.hash
        expected_seq += 1
    return ChainReport(count, expected_seq - 1, last_hash, None)


def refuse_personal_numbers(event: AuditEvent) -> None:
    """Defence in depth: an audit field that holds a number passing the BSN elfproef is a bug.

    Onderwijsnummers (prefix 10, remainder 5) are caught too. Counts and ids are fine; they are
    not nine-digit strings that pass a personal-number check.
    """
    texts = [
        event.actor,
        event.action,
        event.object_kind,
        event.object_ref,
        event.result,
        event.origin,
    ]
    texts.append(canonical_detail(event.detail))
    for text in texts:
        for match in _NINE_DIGITS.finditer(text):
            digits = match.group(0)
            rem = elfproef_remainder(digits)
            if (rem == 0 and digits != "000000000") or (digits.startswith("10") and rem == 5):
                raise ValueError(
                    f"audit event {event.action!r} holds what looks like a personal number; "
                    "use the pseudonym"
                )
