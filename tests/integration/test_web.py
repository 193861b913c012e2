"""The audit web view through its HTTP interface: login (hashed passwords, signed sessions that
expire, a changed cookie refused), chain status, event search, a student's trail (the look is
recorded), the outbox, role enforcement (an auditor cannot sign a checkpoint; an admin can),
and no page with a personal number. The same app is the one the Airflow plugin mounts."""

from __future__ import annotations

import base64
import importlib.util
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from overstap.bootstrap import HubContext
from overstap.domain.identifiers import Oin
from overstap.pki import PartySpec, init_dev_pki
from overstap.region import generate_region, iter_students
from overstap.services.pki import DEV_HUB_OIN
from overstap.services.region_load import load_region_into_hub
from overstap.store import migrate
from overstap.store.tables import audit_checkpoint, audit_event
from overstap.web.accounts import Account, Accounts, Sessions
from overstap.web.app import COOKIE, create_app

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("web")
    generate_region(base / "region", students=60, seed=13)
    env = {"OVERSTAP_HOME": str(base / "home"), "OVERSTAP_KEY_PASSPHRASE": "web-test-passphrase-1"}
    ctx = HubContext.open(env, require_schema=False)
    migrate.upgrade(ctx.engine)
    load_region_into_hub(ctx, base / "region")
    init_dev_pki(ctx.settings.pki_dir,
                 [PartySpec(slug="hub", name="Overstap Hub", oin=Oin(DEV_HUB_OIN), kind="hub")],
                 b"web-test-passphrase-1")  # fmt: skip
    accounts = Accounts(ctx.settings.home / "web-users.json")
    accounts.add("anna", "auditor", PASSWORD)
    accounts.add("bert", "admin", PASSWORD)
    ctx.close()
    return base


def _client(home: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("OVERSTAP_KEY_PASSPHRASE", "web-test-passphrase-1")
    return TestClient(create_app({"OVERSTAP_HOME": str(home / "home")}), follow_redirects=False)


def _login(client: TestClient, name: str) -> None:
    answer = client.post("/login", data={"name": name, "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "./"
    assert "httponly" in answer.headers["set-cookie"].lower()


def test_pages_need_a_login_and_a_wrong_password_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(home, monkeypatch)
    for page in ("/", "/events", "/trail", "/outbox"):
        assert client.get(page).headers["location"] == "login"
    refused = client.post("/login", data={"name": "anna", "password": "wrong password!"})
    assert refused.headers["location"] == "login?failed=1"
    assert "Wrong name or password" in client.get("/login?failed=1").text


def test_an_auditor_reads_everything_and_changes_nothing(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(home, monkeypatch)
    _login(client, "anna")
    status = client.get("/")
    assert status.status_code == 200 and "Audit chain OK" in status.text
    assert "Sign a checkpoint" not in status.text
    assert client.post("/checkpoint").status_code == 403
    record = next(iter_students(home / "region"))
    found = client.get("/events", params={"kind": "student.", "party": str(record.student.school)})
    assert found.status_code == 200 and "student.created" in found.text
    assert client.get("/events", params={"from": "yesterday"}).status_code == 400
    trail = client.get(
        "/trail",
        params={"school": str(record.student.school), "leerlingid": record.student.leerlingid},
    )
    assert "student.created" in trail.text and "this look is recorded" in trail.text
    assert "Messages per state" in client.get("/outbox").text
    ctx = HubContext.open({"OVERSTAP_HOME": str(home / "home")})
    with ctx.engine.connect() as conn:
        looks = (
            conn.execute(
                select(audit_event.c.actor).where(audit_event.c.action == "audit.trail_viewed")
            )
            .scalars()
            .all()
        )
        assert "person:anna" in looks
        assert conn.execute(select(func.count()).select_from(audit_checkpoint)).scalar_one() == 0
    ctx.close()
    numbers = {r.student.identifier.value for r in iter_students(home / "region")}
    pages = status.text + found.text + trail.text
    assert not [n for n in numbers if n in pages]


def test_an_admin_signs_a_checkpoint(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(home, monkeypatch)
    _login(client, "bert")
    assert "Sign a checkpoint" in client.get("/").text
    assert client.post("/checkpoint").status_code == 303
    assert "Last checkpoint: record" in client.get("/").text


def test_sessions_expire_and_a_changed_cookie_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = Sessions(home / "home" / "web-session.key")
    anna = Account("anna", "auditor")
    assert sessions.read(sessions.issue(anna)) == anna
    old = sessions.issue(anna, now=time.time() - sessions.seconds - 1)
    assert sessions.read(old) is None
    body, mac = sessions.issue(anna).rsplit(".", 1)
    claims = base64.urlsafe_b64decode(body).decode().replace("|auditor|", "|admin|")
    forged = base64.urlsafe_b64encode(claims.encode()).decode() + "." + mac
    assert sessions.read(forged) is None  # promoting oneself breaks the signature
    assert sessions.read(f"{body}.{'0' * len(mac)}") is None
    client = _client(home, monkeypatch)
    client.cookies.set(COOKIE, old)
    assert client.get("/").headers["location"] == "login"


def test_the_airflow_plugin_mounts_the_app_without_touching_the_hub() -> None:
    spec = importlib.util.spec_from_file_location(
        "overstap_auditor", ROOT / "plugins" / "overstap_auditor.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (mounted,) = module.OverstapAuditorPlugin.fastapi_apps
    assert mounted["url_prefix"] == "/overstap" and mounted["app"].title == "Overstap audit"


def test_airflow_loads_the_plugin_from_the_plugins_folder(tmp_path: Path) -> None:
    """`airflow plugins` as Airflow's api-server would find it (its own AIRFLOW_HOME)."""
    import json
    import os
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    listed = subprocess.run([str(bin_dir / "airflow"), "plugins", "--output", "json"], env=env,
                            capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-2000:]
    plugins = json.loads(listed.stdout[listed.stdout.index("[") :])
    (ours,) = [p for p in plugins if p["name"] == "overstap_auditor"]
    assert ours["fastapi_apps"][0]["url_prefix"] == "/overstap"
