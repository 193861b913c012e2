"""`apply_registry` on both databases: the file's parties, calendar, SIS sources and routes become
the hub's, once (a second apply of the same file changes nothing and audits nothing), a route the
file drops is removed and audited, and the chain still verifies. `certificate_problems` names the
routed parties whose certificates are missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from registry_files import SFTP_CONN, registry_data, write_registry
from sqlalchemy import Engine, func, select

from overstap.audit.pseudonym import Pseudonymizer
from overstap.bootstrap import HubContext
from overstap.config import Settings
from overstap.pki import PkiLayout
from overstap.registry import Registry, load_registry
from overstap.services.pki import issue_dev_pki
from overstap.services.registry import ACTOR, apply_registry, certificate_problems
from overstap.store.audit_log import AuditLog
from overstap.store.tables import (
    audit_event,
    delivery_route,
    mbo_institution,
    municipality,
    municipality_route,
    school_calendar,
    sis_source,
    vo_school,
)


@pytest.fixture(scope="module")
def region_dir(registry_region: Path) -> Path:
    return registry_region


def write(path: Path, data: dict[str, Any]) -> Registry:
    return load_registry(write_registry(path, data)[0])


def hub(engine: Engine, tmp_path: Path) -> HubContext:
    return HubContext(
        Settings.from_env({"OVERSTAP_HOME": str(tmp_path)}), engine, Pseudonymizer(bytes(32))
    )


def applied_records(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_event.c.actor, audit_event.c.object_ref, audit_event.c.detail)
            .where(audit_event.c.action == "registry.applied")
            .order_by(audit_event.c.seq)
        ).all()
    return [{"actor": r.actor, "ref": r.object_ref, **json.loads(r.detail)} for r in rows]


def test_apply_writes_the_file_and_a_second_apply_changes_nothing(
    engine: Engine, tmp_path: Path, region_dir: Path
) -> None:
    ctx = hub(engine, tmp_path)
    file = tmp_path / "registry.yaml"
    registry = write(file, registry_data(region_dir))
    region = registry.region

    first = apply_registry(ctx, registry)
    assert first.changed and first.region == region.code
    assert (first.sources, first.institution_routes, first.municipality_routes, first.removed) == (
        len(region.vo_schools),
        len(region.mbo_institutions),
        2,
        0,
    )

    with engine.connect() as conn:

        def count(table: Any) -> int:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

        assert count(vo_school) == len(region.vo_schools)
        assert count(mbo_institution) == len(region.mbo_institutions)
        assert count(municipality) == len(region.municipalities)
        calendar = conn.execute(select(school_calendar)).one()
        assert calendar.school_year == str(region.school_year)
        assert calendar.registration_deadline == region.calendar.registration_deadline
        assert calendar.zomerlek_date == region.calendar.zomerlek_date

        sources = {r.school: r for r in conn.execute(select(sis_source))}
        assert set(sources) == {str(s.location) for s in region.vo_schools}
        for school in region.vo_schools:
            row = sources[str(school.location)]
            assert (row.connector, row.mapping) == ("file", school.sis)
            assert dict(row.settings) == {
                "folder": str(region_dir.resolve() / "sis" / "{location}")
            }

        routes = {r.brin: r for r in conn.execute(select(delivery_route))}
        assert set(routes) == {str(i.brin) for i in region.mbo_institutions}
        for inst in region.mbo_institutions:
            row = routes[str(inst.brin)]
            assert row.transport == inst.transport
            settings = dict(row.settings)
            assert settings["oin"] == inst.oin.value and settings["conn_id"].startswith("overstap_")
            assert not any("password" in key for key in settings)

        gm_routes = {r.gemeente: r for r in conn.execute(select(municipality_route))}
        assert set(gm_routes) == {str(m.code) for m in region.municipalities[:2]}
        m0 = region.municipalities[0]
        assert dict(gm_routes[str(m0.code)].settings) == {
            "oin": m0.oin.value,
            "folder": f"gm/{m0.code}/in",
            "conn_id": SFTP_CONN,
        }

    records = applied_records(engine)
    assert len(records) == 1
    assert records[0]["actor"] == ACTOR and records[0]["ref"] == region.code
    assert records[0]["sha256"] == first.digest and records[0]["removed"] == 0

    again = apply_registry(ctx, load_registry(file))
    assert not again.changed and again.removed == 0 and again.digest == first.digest
    assert len(applied_records(engine)) == 1  # no second record for nothing

    with engine.connect() as conn:
        assert AuditLog(conn).verify().problem is None


def test_a_route_the_file_drops_is_removed_and_audited(
    engine: Engine, tmp_path: Path, region_dir: Path
) -> None:
    ctx = hub(engine, tmp_path)
    file = tmp_path / "registry.yaml"
    data = registry_data(region_dir)
    region = apply_registry(ctx, write(file, data))
    assert region.municipality_routes == 2

    dropped = data["municipalities"][1]
    del dropped["route"]
    result = apply_registry(ctx, write(file, data))
    assert result.changed and result.removed == 1 and result.municipality_routes == 1

    with engine.connect() as conn:
        left = set(conn.execute(select(municipality_route.c.gemeente)).scalars())
        assert left == {data["municipalities"][0]["code"]}
        # The party stays: signals and the audit trail refer to it.
        assert conn.execute(
            select(municipality.c.code).where(municipality.c.code == dropped["code"])
        ).scalar_one()
        assert AuditLog(conn).verify().problem is None

    records = applied_records(engine)
    assert [r["removed"] for r in records] == [0, 1]
    assert records[1]["municipality_routes"] == 1 and records[1]["sha256"] == result.digest
    assert records[0]["sha256"] != records[1]["sha256"]

    # A changed setting is a change too; applying it twice is not.
    data["municipalities"][0]["route"]["settings"]["folder"] = "gm/elsewhere"
    assert apply_registry(ctx, write(file, data)).changed
    assert not apply_registry(ctx, write(file, data)).changed
    assert len(applied_records(engine)) == 3


# --- certificates -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def region_pki(tmp_path_factory: pytest.TempPathFactory, region_dir: Path) -> tuple[Path, Registry]:
    """A dev PKI for the hub and every party of the region, and the region's registry."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OVERSTAP_KEY_PASSPHRASE", raising=False)
        mp.delenv("OVERSTAP_KEY_PASSPHRASE_FILE", raising=False)
        mp.delenv("OVERSTAP_HUB_OIN", raising=False)
        settings = Settings.from_env({"OVERSTAP_HOME": str(home)})
        layout, issued = issue_dev_pki(settings, region_dir)
    assert issued > 0
    registry = write(home / "registry.yaml", registry_data(region_dir))
    return layout.root, registry


def test_certificate_problems_name_the_party_without_certificates(
    tmp_path: Path, region_pki: tuple[Path, Registry]
) -> None:
    issued, registry = region_pki
    pki = tmp_path / "pki"
    shutil.copytree(issued, pki)
    assert certificate_problems(registry, pki) == []

    inst = registry.region.mbo_institutions[1]
    PkiLayout(pki).cert_path(f"mbo-{inst.brin}", "enc").unlink()
    problems = certificate_problems(registry, pki)
    assert problems == [
        f"institution {inst.brin}: no certificate in {PkiLayout(pki).party_dir(f'mbo-{inst.brin}')}"
    ]

    # A municipality without a route needs no certificate here; one with a route does.
    unrouted, routed = registry.region.municipalities[3], registry.region.municipalities[0]
    shutil.rmtree(PkiLayout(pki).party_dir(f"gm-{unrouted.code}"))
    assert len(certificate_problems(registry, pki)) == 1
    PkiLayout(pki).cert_path(f"gm-{routed.code}", "sign").unlink()
    problems = certificate_problems(registry, pki)
    assert len(problems) == 2 and problems[1].startswith(f"municipality {routed.code}: ")


def test_a_source_that_moves_starts_over_and_one_that_stays_keeps_its_place(
    engine: Engine, tmp_path: Path, region_dir: Path
) -> None:
    ctx = hub(engine, tmp_path)
    file = tmp_path / "registry.yaml"
    data = registry_data(region_dir)
    apply_registry(ctx, write(file, data))
    with engine.begin() as conn:  # both schools pulled before: each has a watermark
        conn.execute(sis_source.update().values(watermark="leerlingen.csv@2026-10-01"))
    moved = data["vo_schools"][0]
    moved["sis_source"]["settings"]["folder"] = "/srv/other-export/{location}"
    apply_registry(ctx, write(file, data))
    with engine.connect() as conn:
        marks = dict(
            conn.execute(select(sis_source.c.school, sis_source.c.watermark)).tuples().all()
        )
    location = f"{moved['brin']}{moved['vestiging']}"
    assert marks.pop(location) is None  # another export: pulled from its start
    assert set(marks.values()) == {"leerlingen.csv@2026-10-01"}  # the others keep their place
