"""Shared fixtures: a migrated hub database on SQLite and on PostgreSQL.

PostgreSQL is the real server on 127.0.0.1:5432 (override with OVERSTAP_TEST_PG_URL). Without it
the PostgreSQL cases skip, unless OVERSTAP_REQUIRE_SERVICES=1 (set by CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from overstap.store import migrate
from overstap.store.engine import make_engine

PG_URL = os.environ.get("OVERSTAP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("OVERSTAP_REQUIRE_SERVICES") == "1"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def missing_service(what: str) -> None:
    """Skip locally, fail in CI: a green run must not hide a missing component."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (OVERSTAP_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads or writes the developer's own .overstap home or Airflow home."""
    monkeypatch.setenv("OVERSTAP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OVERSTAP_DATABASE_URL", raising=False)
    monkeypatch.delenv("OVERSTAP_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once, copy per test: migrations run in ~100 ms, a copy in ~1 ms."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine | None]:
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception:
        engine.dispose()
        yield None
        return
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_admin: Engine | None) -> Iterator[str | None]:
    """A migrated template database; each test gets `CREATE DATABASE ... TEMPLATE` of it."""
    if pg_admin is None:
        yield None
        return
    name = f"overstap_tmpl_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    pg_admin: Engine | None,
    pg_template: str | None,
) -> Iterator[str]:
    """URL of a freshly migrated, empty hub database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if pg_admin is None or pg_template is None:
        missing_service(f"PostgreSQL at {make_url(PG_URL).render_as_string()}")
        return
    name = f"overstap_t_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _binary(name: str, *extra_dirs: str) -> str:
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in extra_dirs if (Path(d) / name).exists()), None
    )
    if found is None:
        missing_service(f"the {name} binary")
        raise AssertionError("unreachable")
    return found


@pytest.fixture(scope="session")
def openssl_bin() -> str:
    """The openssl binary, as an independent verifier."""
    return _binary("openssl")


@pytest.fixture(scope="session")
def xmlsec1_bin() -> str:
    """Debian's xmlsec1, as an independent signature verifier."""
    return _binary("xmlsec1")


@pytest.fixture(scope="session")
def sshd_bin() -> str:
    """OpenSSH's sshd, for real SFTP peers."""
    return _binary("sshd", "/usr/sbin")


@pytest.fixture(scope="session")
def chromium_bins() -> tuple[str, str]:
    """Debian's chromium and chromedriver, for the browser tests of the web view."""
    return _binary("chromium"), _binary("chromedriver")


@pytest.fixture(scope="session")
def registry_region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-student synthetic region (seed 3: one SOAP and one SFTP institution), for registry
    files (tests/registry_files.py)."""
    from overstap.region import generate_region

    out = tmp_path_factory.mktemp("region") / "synth"
    generate_region(out, students=20, seed=3)
    return out
