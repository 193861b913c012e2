"""The auditors' export verifies offline with standard tools (the copied `verify_export.py`, run
by a plain Python with openssl) and detects every tampering: an altered record, a dropped one,
records cut off the end (with or without their checkpoint files), an altered checkpoint or
export statement, a record re-hashed by someone without the hub's key, another CA."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from overstap.audit.chain import AuditEvent
from overstap.audit.offline_verify import verify_export
from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.domain.identifiers import Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.services.audit_checkpoints import make_checkpoint
from overstap.services.audit_export import export_audit
from overstap.services.pki import DEV_HUB_OIN, hub_signer
from overstap.store.audit_log import AuditLog, fixed_clock

PASS = b"audit-export-test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    hub = PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub")
    return init_dev_pki(tmp_path_factory.mktemp("pki"), [hub], PASS)


def _day(n: int) -> datetime:
    return datetime(2026, 11, n, 12, tzinfo=UTC)


@pytest.fixture
def export(engine: Engine, tmp_path: Path, pki: PkiLayout) -> Path:
    """Records on 1-6 November with checkpoints after days 2 and 4; export 3-6 November (the
    export signs the head, record 60, itself)."""
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )
    signer = hub_signer(pki.root, PASS)
    for day in range(1, 7):
        with engine.begin() as conn:
            AuditLog(conn, fixed_clock(_day(day))).append_many(
                AuditEvent("test", "thing.done", "thing", f"d{day}-{i}", detail={"é": i})
                for i in range(10)
            )
        if day in (2, 4):
            make_checkpoint(ctx, signer, now=_day(day))
    out = tmp_path / "export"
    report = export_audit(ctx, date(2026, 11, 3), date(2026, 11, 6), out, signer=signer,
                          ca_bundle=pki.trust_bundle_path)  # fmt: skip
    assert (report.first, report.last) == (21, 60)
    return out


def test_the_export_verifies_with_a_plain_python_and_openssl(export: Path) -> None:
    assert verify_export(export) == []
    # The copy in the export, by an interpreter that knows nothing of Overstap.
    alone = export.parent / "elsewhere"
    shutil.copytree(export, alone)
    done = subprocess.run(
        [sys.executable, "-I", "verify_export.py", "."],
        cwd=alone, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("OK"), done.stdout + done.stderr
    assert {p.name for p in export.iterdir()} >= {
        "records.jsonl", "checkpoint-20.txt", "checkpoint-20.sig", "checkpoint-40.txt",
        "checkpoint-60.txt",
        "export.txt", "export.sig", "hub-signing.pem", "ca-bundle.pem", "PROCEDURE.md",
    }  # fmt: skip


def _lines(export: Path) -> list[list[object]]:
    return [json.loads(line) for line in (export / "records.jsonl").read_text("utf-8").splitlines()]


def _write(export: Path, rows: list[list[object]]) -> None:
    (export / "records.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def _alter(rows: list[list[object]]) -> None:
    rows[5][6] = "forged"


def _drop(rows: list[list[object]]) -> None:
    del rows[7]


def _cut(rows: list[list[object]]) -> None:
    del rows[-3:]


def _rehash(rows: list[list[object]]) -> None:
    import hashlib

    rows[-1][6] = "forged"
    text = json.dumps(rows[-1][:10], separators=(",", ":"), ensure_ascii=False)
    rows[-1][10] = hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("tamper", "found"),
    [(_alter, "altered"), (_drop, "missing"), (_cut, "export.txt says"),
     (_rehash, "not the record its signed checkpoint covers")],
)  # fmt: skip
def test_record_tampering_is_detected(
    export: Path, tamper: Callable[[list[list[object]]], None], found: str
) -> None:
    rows = _lines(export)
    tamper(rows)
    _write(export, rows)
    problems = verify_export(export)
    assert problems and found in problems[0], problems


def test_cutting_the_end_with_its_checkpoint_files_is_detected(export: Path) -> None:
    rows = _lines(export)
    _write(export, rows[:-20])  # back to checkpoint 40: consistent, but shorter than stated
    (export / "checkpoint-60.txt").unlink()
    (export / "checkpoint-60.sig").unlink()
    problems = verify_export(export)
    assert problems and "export.txt says" in problems[0], problems


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [("checkpoint-40.txt", "seq: 40", "seq: 41"), ("export.txt", "first: 21", "first: 41")],
)
def test_an_altered_signed_statement_is_detected(
    export: Path, name: str, old: str, new: str
) -> None:
    path = export / name
    text = path.read_text("ascii")
    assert old in text
    path.write_text(text.replace(old, new), "ascii")
    problems = verify_export(export)
    assert problems and "signature does not verify" in " ".join(problems), problems


def test_a_certificate_of_another_ca_is_refused(export: Path, tmp_path: Path) -> None:
    other = init_dev_pki(
        tmp_path / "other-pki",
        [PartySpec(slug="hub", name="Nep Hub", oin=Oin(DEV_HUB_OIN), kind="hub")],
        PASS,
    )
    shutil.copyfile(other.trust_bundle_path, export / "ca-bundle.pem")
    problems = verify_export(export)
    assert problems and "does not chain" in problems[0]
