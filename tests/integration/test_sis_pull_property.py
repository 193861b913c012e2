"""Property: whatever a school's export looks like, every record that comes in is imported or
quarantined (records in = imported + quarantined), each refused record is stored with its bytes,
and the audit chain still verifies. Exports are generated (a synthetic region, both dialects)
and then mutated at random: bytes flipped or inserted, lines deleted, duplicated or swapped,
cells emptied, foreign encodings, a truncated tail."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from connectors.sis_file import FileSisConnector
from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.ports import SisSchool
from overstap.region import generate_region, load_region
from overstap.services.sis_pull import pull_school
from overstap.store.audit_log import AuditLog
from overstap.store.students import save_parties
from overstap.store.tables import quarantine


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=300, seed=31)
    return out


def _mutate(data: bytes, seed: int, steps: int) -> bytes:
    r = random.Random(seed)
    lines = data.split(b"\r\n")
    for _ in range(steps):
        kind = r.randrange(8)
        i = r.randrange(1, max(2, len(lines)))
        if i >= len(lines):
            continue
        line = lines[i]
        if kind == 0 and line:  # flip a byte
            j = r.randrange(len(line))
            lines[i] = line[:j] + bytes([r.randrange(256)]) + line[j + 1 :]
        elif kind == 1:  # delete a line
            del lines[i]
        elif kind == 2:  # duplicate a line
            lines.insert(i, line)
        elif kind == 3 and len(lines) > 2:  # swap two lines
            k = r.randrange(1, len(lines))
            lines[i], lines[k] = lines[k], lines[i]
        elif kind == 4 and line:  # empty a cell
            sep = b";" if b";" in lines[0] else b","
            cells = line.split(sep)
            cells[r.randrange(len(cells))] = b""
            lines[i] = sep.join(cells)
        elif kind == 5:  # a character in another encoding
            lines[i] = line + "é".encode(r.choice(["utf-8", "cp1252", "utf-16-le"]))
        elif kind == 6:  # a stray quote
            lines[i] = line.replace(b";", b';"', 1).replace(b",", b',"', 1)
        elif kind == 7:  # truncate the tail
            lines = [*lines[:i], line[: r.randrange(len(line) + 1)]]
    return b"\r\n".join(lines)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(0, 12), school_index=st.integers(0, 10))
def test_records_in_equal_imported_plus_quarantined(
    engine: Engine,
    region_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    steps: int,
    school_index: int,
) -> None:
    region = load_region(region_dir)
    ctx = HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path_factory.getbasetemp())}),
        engine,
        Pseudonymizer(bytes(32)),
    )
    with engine.begin() as conn:
        save_parties(
            conn, region.regions, region.municipalities, region.vo_schools, region.mbo_institutions
        )
    school = region.vo_schools[school_index % len(region.vo_schools)]
    folder = tmp_path_factory.mktemp("export") / str(school.location)
    folder.mkdir()
    original = (region_dir / "sis" / str(school.location) / "leerlingen.csv").read_bytes()
    (folder / "leerlingen.csv").write_bytes(_mutate(original, seed, steps))
    source = SisSchool(str(school.location), school.sis, "file", {"folder": str(folder)})
    report = pull_school(ctx, source, FileSisConnector(), school_year=region.school_year)
    assert report.balanced, report
    with engine.connect() as conn:
        stored = conn.execute(
            select(func.count())
            .select_from(quarantine)
            .where(quarantine.c.pull_id == report.pull_id)
        ).scalar_one()
        raws = (
            conn.execute(select(quarantine.c.raw).where(quarantine.c.pull_id == report.pull_id))
            .scalars()
            .all()
        )
        assert AuditLog(conn).verify().problem is None
    assert stored == report.quarantined
    exported = (folder / "leerlingen.csv").read_bytes()
    assert all(raw and raw in exported for raw in raws)  # the exact bytes, from this export
    shutil.rmtree(folder)
