"""Routes whose settings live in Airflow Connections, resolved when a task runs.

A delivery route may hold `{"conn_id": "overstap_mbo_25MB"}` instead of host, port, login and
the rest: the administrator keeps endpoints and credentials where Airflow keeps them (its
metadata database, `AIRFLOW_CONN_*` variables or a secrets backend), and the hub's own tables
hold no secret. Looked up per task run, never at DAG parse time.
"""

from __future__ import annotations

from overstap.domain.errors import ConfigurationError
from overstap.ports import Route

# Connection fields -> route settings; `extra` keys are copied as they are (folder, host_key,
# endpoint, oin, key_path, timeout, ...) and win over the fields.
_FIELDS = (("host", "host"), ("port", "port"), ("login", "username"), ("password", "password"))


def resolve_route(route: Route) -> Route:
    conn_id = route.settings.get("conn_id")
    if not conn_id:
        return route
    from airflow.sdk import Connection

    try:
        conn = Connection.get(conn_id)
    except Exception as exc:  # Airflow raises its own not-found types per backend
        raise ConfigurationError(
            f"delivery route {route.recipient}", f"Airflow connection {conn_id!r} not found"
        ) from exc
    settings = {k: v for k, v in route.settings.items() if k != "conn_id"}
    for attribute, key in _FIELDS:
        value = getattr(conn, attribute, None)
        if value not in (None, ""):
            settings[key] = str(value)
    settings.update({str(k): str(v) for k, v in (conn.extra_dejson or {}).items()})
    return Route(route.recipient, route.transport, settings)
