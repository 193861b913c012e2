"""The fast paths of the audit chain give exactly the bytes, hashes and verdicts of the original.

`record_hash`, `canonical_detail` and `verify_records` were rewritten for speed (bench/audit.py);
the hash format is fixed by every chain already stored, so each fast path is held here against
the original formulation, copied in as the reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

from overstap.audit.chain import (
    GENESIS_HASH,
    AuditEvent,
    AuditRecord,
    ChainProblem,
    ChainReport,
    _payload,
    canonical_detail,
    recompute,
    record_hash,
    seal,
    seal_at,
    timestamp,
    verify_records,
    verify_rows,
)
from overstap.store.audit_log import AuditLog

AT = datetime(2026, 12, 2, 6, 21, 30, 123456, tzinfo=UTC)

TRICKY_TEXTS = [
    "",
    "plain",
    'quote " and backslash \\ and slash /',
    "café, 日本語, emoji \U0001f600, combining e\u0301",
    "controls \x00 \x01 \x08 \t \n \r \x1f and DEL \x7f",
    "line separators \u2028 \u2029 and BOM \ufeff",
    "lone surrogate \ud800",
    '{"already":"json","n":[1,2]}',
    "x" * 5000,
]
TRICKY_SEQS = [0, 1, 7, 2**31, 2**63 - 1, 2**63, 10**40, -1]


def _reference_payload(fields: list[Any]) -> str:
    """The hashed text as first written (overstap/audit/chain.py before the fast path)."""
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def _reference_verify(records: Iterable[AuditRecord]) -> ChainReport:
    """verify_records as first written, hashing with the reference payload."""
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
        fields = [
            rec.seq,
            rec.at,
            rec.actor,
            rec.action,
            rec.object_kind,
            rec.object_ref,
            rec.result,
            rec.origin,
            rec.detail,
            rec.prev_hash,
        ]
        digest = hashlib.sha256(_reference_payload(fields).encode("utf-8")).hexdigest()
        if digest != rec.hash:
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


def _fields(seq: Any, text: Any) -> list[Any]:
    return [seq, text, text, "a", "b", text, "ok", "hub", text, "0" * 64]


@pytest.mark.parametrize("seq", TRICKY_SEQS)
@pytest.mark.parametrize("value", TRICKY_TEXTS)
def test_payload_is_byte_for_byte_json_dumps(seq: int, value: str) -> None:
    fields = _fields(seq, value)
    assert _payload(fields) == _reference_payload(fields)
    assert _payload((*fields, "the record's own hash is not hashed")) == _reference_payload(fields)


@pytest.mark.parametrize(
    ("seq", "odd"),
    [
        (True, "text"),  # a bool is an int to Python but true/false to JSON
        (False, "text"),
        (1.0, "text"),
        ("1", "text"),
        (None, "text"),
        (5, None),
        (5, 42),
        (5, 2.5),
        (5, True),
        (5, ["a", "b"]),
    ],
)
def test_payload_of_non_text_fields_matches_json_dumps(seq: Any, odd: Any) -> None:
    """Only a tampered row holds these; it must hash as json.dumps would, not raise or differ."""
    fields = _fields(seq, odd)
    assert _payload(fields) == _reference_payload(fields)


def test_record_hash_is_pinned() -> None:
    """A hash computed by the original code: stored chains verify only if this never changes."""
    digest = record_hash(
        7,
        "2026-12-02T06:21:30.123456Z",
        "overstap sis pull",
        "student.updated",
        "student",
        "ps1_0123456789abcdef0123456789abcdef",
        "ok",
        "sis:12AB2",
        '{"fields":["adres"],"school":"12AB2"}',
        "0" * 64,
    )
    assert digest == "0c87076adb83ba1df287b98b52746f5a8e8a6992947850b2d82d8c28975cf350"


@pytest.mark.parametrize(
    "detail",
    [
        {},
        {"b": 1, "a": 2},
        {"fields": ["adres", "postcode"], "school": "12AB2"},
        {"nested": {"z": [1, 2.5, None, True], "a": {"é": "ü"}}, "quote": 'a"b\\c'},
        {"when": date(2026, 12, 2), "at": AT, "amount": Decimal("1.10")},  # default=str
        {"big": 10**30, "neg": -1, "ctl": "\x00\n\x1f", "emoji": "\U0001f600"},
        {"records": [["ref-1", "rule.a"], ["ref-2", "rule.b"]]},
    ],
)
def test_canonical_detail_is_byte_for_byte_json_dumps(detail: dict[str, Any]) -> None:
    reference = json.dumps(
        detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    assert canonical_detail(detail) == reference


def test_seal_at_equals_seal() -> None:
    event = AuditEvent("t", "dossier.built", "dossier", "DOS-2026-abc", detail={"version": 2})
    assert seal_at(event, seq=3, at=timestamp(AT), prev_hash="f" * 64) == seal(
        event, seq=3, at=AT, prev_hash="f" * 64
    )


def _chain(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        event = AuditEvent(
            f"actor {i % 3}",
            "student.updated" if i % 2 else "dossier.built",
            "student",
            f"ps1_{i:032x}",
            detail={"i": i, "name": 'é"\\\x01'} if i % 5 else {},
        )
        rec = seal(event, seq=i, at=AT + timedelta(microseconds=i), prev_hash=prev)
        records.append(rec)
        prev = rec.hash
    return records


@pytest.fixture(scope="module")
def chain() -> list[AuditRecord]:
    return _chain(10_000)


def test_sealed_records_hash_as_the_reference(chain: list[AuditRecord]) -> None:
    for rec in chain[:200]:
        assert (
            recompute(rec)
            == hashlib.sha256(
                _reference_payload(
                    [
                        rec.seq,
                        rec.at,
                        rec.actor,
                        rec.action,
                        rec.object_kind,
                        rec.object_ref,
                        rec.result,
                        rec.origin,
                        rec.detail,
                        rec.prev_hash,
                    ]
                ).encode("utf-8")
            ).hexdigest()
        )


def _as_rows(records: Iterable[AuditRecord]) -> list[tuple[Any, ...]]:
    return [
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
    ]


def _tamperings(chain: list[AuditRecord]) -> dict[str, list[AuditRecord]]:
    mid = 5_000  # index of seq 5,001
    return {
        "intact": chain,
        "altered field": [*chain[:mid], replace(chain[mid], result="failed"), *chain[mid + 1 :]],
        "altered detail": [*chain[:mid], replace(chain[mid], detail="{}"), *chain[mid + 1 :]],
        "non-text field": [*chain[:mid], replace(chain[mid], actor=None), *chain[mid + 1 :]],  # type: ignore[arg-type]
        "rehashed forgery": [
            *chain[:mid],
            replace(
                chain[mid],
                result="forged",
                hash=recompute(replace(chain[mid], result="forged")),
            ),
            *chain[mid + 1 :],
        ],
        "missing": [*chain[:mid], *chain[mid + 1 :]],
        "duplicated": [*chain[: mid + 1], chain[mid], *chain[mid + 1 :]],
        "swapped": [*chain[:mid], chain[mid + 1], chain[mid], *chain[mid + 2 :]],
        "cut": chain[:mid],
        "first altered": [replace(chain[0], actor="x"), *chain[1:]],
        "empty": [],
    }


@pytest.mark.parametrize(
    "case",
    [
        "intact",
        "altered field",
        "altered detail",
        "non-text field",
        "rehashed forgery",
        "missing",
        "duplicated",
        "swapped",
        "cut",
        "first altered",
        "empty",
    ],
)
def test_verify_gives_the_reference_verdict(chain: list[AuditRecord], case: str) -> None:
    records = _tamperings(chain)[case]
    expected = _reference_verify(records)
    assert verify_records(records) == expected
    assert verify_rows(_as_rows(records)) == expected


def test_tampered_middle_record_is_named(chain: list[AuditRecord]) -> None:
    report = verify_records(_tamperings(chain)["altered field"])
    assert report.problem == ChainProblem(5_001, "content does not match its hash (record altered)")
    assert (report.count, report.head_seq, report.head_hash) == (5_000, 5_000, chain[4_999].hash)


def test_one_scan_for_personal_numbers_still_finds_them_at_field_edges() -> None:
    bsn = "111222333"  # passes the elfproef
    with pytest.raises(ValueError, match="personal number"):
        AuditEvent("t", "a", "student", bsn)
    with pytest.raises(ValueError, match="personal number"):
        AuditEvent(bsn, "a", "student", "ps1_x")
    with pytest.raises(ValueError, match="personal number"):
        AuditEvent("t", "a", "student", "ps1_x", detail={"n": bsn})
    # Split over two fields it is two short numbers, as when each field was scanned alone.
    AuditEvent("t 11122", "2333 a", "student", "ps1_x")
    AuditEvent("t", "a", "student1", "11222333")


def test_store_verifies_10000_and_names_the_tampered_row(engine: Engine) -> None:
    """The database path (raw DBAPI rows, keyset batches) gives the same verdict."""
    with engine.begin() as conn:
        log = AuditLog(conn, lambda: AT)
        for start in range(0, 10_000, 2_500):
            log.append_many(
                AuditEvent("t", "student.updated", "student", f"ps1_{i:032x}", detail={"i": i})
                for i in range(start, start + 2_500)
            )
    with engine.connect() as conn:
        log = AuditLog(conn)
        records = list(log.records(batch=999))
        assert [r.seq for r in records] == list(range(1, 10_001))
        assert log.verify() == _reference_verify(records)
        assert log.verify().ok
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_event_no_update"))
        else:
            conn.execute(text("SET session_replication_role = replica"))
        conn.execute(text("UPDATE audit_event SET detail = :d WHERE seq = 5001"), {"d": '{"i":0}'})
    with engine.connect() as conn:
        log = AuditLog(conn)
        report = log.verify()
        assert report == _reference_verify(log.records())
    assert report.problem == ChainProblem(5_001, "content does not match its hash (record altered)")
    assert report.count == 5_000


@pytest.mark.parametrize("options", [{"stream_results": True}, {"yield_per": 100}])
def test_store_verifies_on_a_streaming_connection(engine: Engine, options: dict[str, Any]) -> None:
    """Streaming buffers the first row in SQLAlchemy; the fast raw fetch must not skip it."""
    with engine.begin() as conn:
        AuditLog(conn).append_many(
            AuditEvent("t", "student.updated", "student", f"ps1_{i:032x}") for i in range(250)
        )
    with engine.connect().execution_options(**options) as conn:
        log = AuditLog(conn)
        report = log.verify()
        assert [r.seq for r in log.records(batch=100)] == list(range(1, 251))
    assert report.ok, report.problem
    assert report.count == 250
