"""Who is where: the school list puts students without any registration first, shows every
institution's status and the furthest one as the standing; the region counts per municipality;
both as CSV and through the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub_setup import MBO, hub_with_dossiers, waiting_dossiers
from sqlalchemy import Engine, update

from overstap.bootstrap import HubContext
from overstap.domain.registration import StatusReport
from overstap.domain.states import RegistrationStatus as S
from overstap.services.reconcile import reconcile
from overstap.services.reports import (
    NIET_IN_BEELD,
    region_csv,
    region_report,
    school_csv,
    school_report,
)
from overstap.store.tables import dossier

T0 = datetime(2026, 3, 10, 9, tzinfo=UTC)


def _prepare(engine: Engine, tmp_path: Path) -> HubContext:
    ctx = hub_with_dossiers(engine, tmp_path, "soap")
    with engine.begin() as conn:
        conn.execute(update(dossier).values(state="afgeleverd"))
    cases = waiting_dossiers()
    reports = [
        StatusReport(f"R{i}", T0 + timedelta(days=i), MBO, d.student.school.brin, d.student.identifier, status, (T0 + timedelta(days=i)).date())
        for i, (d, status) in enumerate(
            [(cases["adult_promotion"], S.INGESCHREVEN), (cases["onderwijsnummer"], S.ONTVANGEN),
             (cases["secret_address"], S.NIET_TOT_INSCHRIJVING)]
        )
    ]  # fmt: skip
    reconcile(ctx, reports, channel="soap")
    return ctx


def test_school_list_puts_students_out_of_sight_first(engine: Engine, tmp_path: Path) -> None:
    ctx = _prepare(engine, tmp_path)
    lines = school_report(ctx, "12AB01")
    by_id = {line.leerlingid: line for line in lines}
    assert (
        by_id["LL-1002"].standing == "ingeschreven"
        and by_id["LL-1002"].since == (T0 + timedelta(days=0)).date()
    )
    assert (
        by_id["LL-1003"].standing == "ontvangen"
        and by_id["LL-1003"].registrations == "25MB ontvangen"
    )
    assert by_id["LL-1004"].standing == "niet_tot_inschrijving"
    standings = [line.standing for line in lines]
    first_other = next(i for i, s in enumerate(standings) if s != NIET_IN_BEELD)
    assert (
        set(standings[:first_other]) == {NIET_IN_BEELD}
        and NIET_IN_BEELD not in standings[first_other:]
    )
    assert standings[-1] == "ingeschreven"  # the settled ones last
    text = school_csv(lines)
    assert text.splitlines()[0] == "leerlingid;naam;gemeente;stand;sinds;aanmeldingen"
    assert len(text.splitlines()) == len(lines) + 1


def test_region_counts_residents_per_municipality(engine: Engine, tmp_path: Path) -> None:
    ctx = _prepare(engine, tmp_path)
    [line] = region_report(ctx, "MC20")
    assert line.gemeente == "GM0153" and line.students == len(waiting_dossiers())
    assert line.counts["ingeschreven"] == 1 and line.counts["ontvangen"] == 1
    assert line.counts[NIET_IN_BEELD] == line.students - 3
    assert region_csv([line]).splitlines()[1].startswith("GM0153;Enschede;")


def test_the_commands_print_and_write_csv(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ctx = HubContext.open({"OVERSTAP_HOME": str(home)}, migrate=True)
    _prepare(ctx.engine, tmp_path)
    ctx.close()
    env = {**os.environ, "OVERSTAP_HOME": str(home), "COLUMNS": "200"}
    exe = str(Path(sys.executable).with_name("overstap"))
    school = subprocess.run(
        [exe, "report", "school", "12AB01", "--csv", str(tmp_path / "s.csv")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert school.returncode == 0, school.stderr
    assert "niet in beeld" in school.stdout and (tmp_path / "s.csv").exists()
    region = subprocess.run(
        [exe, "report", "region", "mc20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert region.returncode == 0 and "GM0153" in region.stdout
    assert (
        subprocess.run(
            [exe, "report", "region", "MC99"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).returncode
        == 1
    )
