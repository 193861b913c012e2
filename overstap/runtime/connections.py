"""Settings that live in Airflow Connections: resolved when a task runs, created from the registry.

A delivery route or a SIS source may hold `{"conn_id": "overstap_mbo_25MB"}` instead of host,
port, login and the rest: the administrator keeps endpoints and credentials where Airflow keeps
them (its metadata database, `AIRFLOW_CONN_*` variables or a secrets backend), and the hub's own
tables hold no secret. Looked up per task run, never at DAG parse time.

`sync_connections` creates or updates the Connections a registry file defines
(`overstap registry sync-connections`); a password comes from the environment variable the
registry names, so it never stands in a file of ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from overstap.domain.errors import ConfigurationError
from overstap.ports import Route, SisSchool
from overstap.registry import ConnectionSpec

# Connection fields -> settings. A REST SIS authenticates with OAuth2 client credentials, so
# there login and password are the client's id and secret.
_FIELDS = {"host": "host", "port": "port", "login": "username", "password": "password"}
_REST_FIELDS = {**_FIELDS, "login": "client_id", "password": "client_secret"}
# Settings the registry checked against the party (whom the hub encrypts to and accepts from):
# a Connection edited in Airflow must not change them behind the registry's back.
_PINNED = frozenset({"oin"})


def resolve_settings(
    settings: Mapping[str, str], what: str, fields: Mapping[str, str] = _FIELDS
) -> dict[str, str]:
    """`settings` filled in from the Connection named by `conn_id`: its fields, then its extra;
    the registry's own settings win over both, and `oin` only ever comes from the registry."""
    conn_id = settings.get("conn_id")
    if not conn_id:
        return dict(settings)
    from airflow.sdk import Connection

    try:
        conn = Connection.get(conn_id)
    except Exception as exc:  # Airflow raises its own not-found types per backend
        raise ConfigurationError(what, f"Airflow connection {conn_id!r} not found") from exc
    resolved: dict[str, str] = {}
    for attribute, key in fields.items():
        value = getattr(conn, attribute, None)
        if value not in (None, ""):
            resolved[key] = str(value)
    extra = {str(k): str(v) for k, v in (conn.extra_dejson or {}).items()}
    resolved.update({k: v for k, v in extra.items() if k not in _PINNED})
    resolved.update({k: v for k, v in settings.items() if k != "conn_id"})
    return resolved


def resolve_route(route: Route) -> Route:
    settings = resolve_settings(route.settings, f"delivery route {route.recipient}")
    return Route(route.recipient, route.transport, settings)


def resolve_source(source: SisSchool) -> SisSchool:
    fields = _REST_FIELDS if source.connector == "rest" else _FIELDS
    settings = resolve_settings(source.settings, f"sis source {source.location}", fields)
    return replace(source, settings=settings)


@dataclass(frozen=True)
class SyncResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]


def sync_connections(specs: Iterable[ConnectionSpec], env: Mapping[str, str]) -> SyncResult:
    """Create or update Airflow Connections in Airflow's metadata database (as `airflow
    connections add` would). Needs AIRFLOW_HOME (or the database settings) of that Airflow."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    result = SyncResult([], [], [])
    wanted = list(specs)
    for spec in wanted:  # every password first: refuse before changing anything
        if spec.password_env and not env.get(spec.password_env):
            raise ConfigurationError(
                f"connection {spec.conn_id}",
                f"password_env {spec.password_env} is not set in the environment",
            )
    with create_session() as session:
        for spec in wanted:
            values: dict[str, Any] = {
                "conn_type": spec.conn_type,
                "host": spec.host,
                "port": spec.port,
                "login": spec.login,
            }
            if spec.password_env:
                values["password"] = env[spec.password_env]
            found = session.scalar(select(Connection).where(Connection.conn_id == spec.conn_id))
            if found is None:
                extra = dict(spec.extra)
                values["extra"] = json.dumps(extra, sort_keys=True) if extra else None
                session.add(Connection(conn_id=spec.conn_id, **values))
                result.created.append(spec.conn_id)
                continue
            # Extras the file does not name (a private key or client secret an administrator
            # keeps in Airflow, since the registry refuses secrets) stay as they are, and so
            # does a password when the file names no variable for it.
            kept = found.extra_dejson or {}
            merged = {**kept, **spec.extra}
            values["extra"] = json.dumps(merged, sort_keys=True) if merged else None
            current = {k: getattr(found, k) for k in values if k != "extra"}
            current["extra"] = json.dumps(kept, sort_keys=True) if kept else None
            if current == values:
                result.unchanged.append(spec.conn_id)
                continue
            for key, value in values.items():
                setattr(found, key, value)
            result.updated.append(spec.conn_id)
    return result
