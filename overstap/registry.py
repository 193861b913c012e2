"""The region registry as code: one YAML file says who takes part and how each is reached.

A registry file is a region file (docs/region.md: Doorstroompunt regions, municipalities, vo
school locations, mbo institutions, the school calendar) with, per party, how the hub reaches it:

- a school's `sis_source`: connector (file, sftp, rest, soap), mapping (default: the school's
  SIS product) and the connector's settings;
- an institution's `route` (its `transport` is soap or sftp) and a municipality's `route`
  (`transport` sftp, folder or soap): settings such as endpoint, folder and OIN;

and, at the top, `connections` (Airflow Connections the routes and sources name with
`connection:`; `overstap registry sync-connections` creates them), `schedules` (a cron
expression per DAG) and `certificates` (the hub's OIN and the PKI directory to check against).

Secrets never stand in the file: a setting named like a secret is refused; a connection's
password is named by the environment variable that holds it (`password_env`). Loading checks
everything it can without a network and raises `RegistryError` naming the file, the line and
the field: `registry.yaml line 42: mbo_institutions[3].route.endpoint: is missing [rule ...]`.
docs/registry.md describes the file with an example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from overstap.config import schedule_variable
from overstap.domain.errors import InvalidRecord
from overstap.domain.identifiers import Oin
from overstap.ports import Route, SisSchool
from overstap.region.model import Region, RegionDataError, region_from_mapping

# The DAGs whose schedule a registry may set (dags/<id>.py).
DAG_IDS = (
    "overstap_sis_pull",
    "overstap_delivery",
    "overstap_status_intake",
    "overstap_signals",
    "overstap_audit_checkpoint",
)
CONNECTORS = ("file", "sftp", "rest", "soap")
INSTITUTION_TRANSPORTS = ("soap", "sftp", "folder")
MUNICIPALITY_TRANSPORTS = ("sftp", "folder", "soap")
CONNECTION_TYPES = ("sftp", "http", "https", "fs")

# Schedules Airflow knows that croniter does not (croniter checks @daily, @hourly and the rest).
_AIRFLOW_PRESETS = ("@once", "@continuous", "@quarterly")

# What each route transport and each SIS connector cannot do without (unless a connection
# supplies it). Only a route has an OIN: its party is whom the hub encrypts to.
_REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "route": {
        "soap": ("endpoint", "oin"),
        "sftp": ("host", "username", "key_path", "host_key", "folder", "oin"),
        "folder": ("folder", "oin"),
    },
    "source": {
        "file": ("folder",),
        "sftp": ("host", "username", "key_path", "host_key", "folder"),
        "rest": ("base_url", "client_id", "client_secret"),
        "soap": ("endpoint", "username", "password"),
    },
}
_FROM_CONNECTION = {
    "host", "port", "username", "password", "key_path", "host_key", "endpoint", "client_id",
    "client_secret",
}  # fmt: skip
_SECRET = re.compile(r"(password|passwd|secret|token|passphrase|private_key)$", re.IGNORECASE)
_CONN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_MAPPINGS_DIR = Path(__file__).resolve().parents[1] / "mappings" / "sis"
# Every key a registry may hold, per place: the region file's (docs/region.md) and ours.
_KEYS: dict[str, frozenset[str]] = {
    "": frozenset({
        "code", "name", "seed", "students", "school_year", "calendar", "doorstroompunt_regions",
        "municipalities", "vo_schools", "mbo_institutions", "programmes", "connections",
        "schedules", "certificates",
    }),
    "vo_schools": frozenset({"brin", "vestiging", "name", "oin", "gemeente", "sis", "sis_source"}),
    "mbo_institutions": frozenset({"brin", "name", "oin", "transport", "route"}),
    "municipalities": frozenset({"code", "name", "region", "oin", "route"}),
    "sis_source": frozenset({"connector", "mapping", "settings", "connection"}),
    "route": frozenset({"transport", "settings", "connection"}),
    "certificates": frozenset({"hub_oin", "pki_dir"}),
}  # fmt: skip


class RegistryError(RegionDataError):
    """A registry file is wrong at a known place: `<file> line <n>: <field>: <reason> [rule R]`."""


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """An Airflow Connection as the registry states it; the password only by its variable."""

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password_env: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # the variable's name only, never a value
        return f"ConnectionSpec({self.conn_id!r}, {self.conn_type!r}, host={self.host!r})"


@dataclass(frozen=True, slots=True)
class Registry:
    source: Path
    region: Region
    sources: tuple[SisSchool, ...]
    institution_routes: tuple[Route, ...]
    municipality_routes: tuple[Route, ...]
    connections: tuple[ConnectionSpec, ...]
    schedules: Mapping[str, str]
    hub_oin: Oin | None
    pki_dir: Path | None
    warnings: tuple[str, ...] = ()

    def schedule_env(self) -> dict[str, str]:
        """The environment that gives each DAG its schedule (`overstap.runtime.schedules`)."""
        return {schedule_variable(dag_id): cron for dag_id, cron in self.schedules.items()}


def load_registry(path: Path) -> Registry:
    """Read and check a registry file; `RegistryError` at the first problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryError(
            "file not found", field="registry", rule="REGISTRY-MISSING", record=str(path)
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RegistryError(
            f"not valid YAML ({getattr(exc, 'problem', None) or 'parse error'})",
            field="yaml",
            rule="YAML-SYNTAX",
            record=f"{path} line {mark.line + 1 if mark is not None else 1}",
        ) from None
    finally:
        loader.dispose()
    lines = node_lines(node)
    try:
        region = region_from_mapping(data, str(path), lines)
    except RegionDataError as exc:
        # The same message, as the registry's own error type.
        raise RegistryError(
            exc.reason, field=exc.field, rule=exc.rule, record=exc.record or str(path)
        ) from None
    return _Reader(path, lines).read(data, region)


def node_lines(root: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """The 1-based line of every key and list item, by dotted path (`a.b[2].c`)."""
    lines: dict[str, int] = {}
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            lines[path] = key_node.start_mark.line + 1
            lines.update(node_lines(value_node, path))
    elif isinstance(root, yaml.SequenceNode):
        for i, item in enumerate(root.value):
            path = f"{prefix}[{i}]"
            lines[path] = item.start_mark.line + 1
            lines.update(node_lines(item, path))
    return lines


class _Reader:
    def __init__(self, path: Path, lines: dict[str, int]) -> None:
        self.path = path
        self.lines = lines
        self.warnings: list[str] = []

    def fail(self, where: str, reason: str, rule: str) -> RegistryError:
        probe = where
        while probe and probe not in self.lines:  # the nearest enclosing key that has a line
            probe = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
        line = self.lines.get(probe)
        record = f"{self.path} line {line}" if line else str(self.path)
        return RegistryError(reason, field=where, rule=rule, record=record)

    def read(self, data: Any, region: Region) -> Registry:
        top: dict[str, Any] = data
        self._known_keys(top)
        connections = self._connections(top.get("connections"))
        known = {c.conn_id for c in connections}
        sources = []
        for i, (item, school) in enumerate(zip(top["vo_schools"], region.vo_schools, strict=True)):
            where = f"vo_schools[{i}].sis_source"
            raw = item.get("sis_source")
            if raw is None:
                self.warnings.append(f"school {school.location} has no sis_source: not pulled")
                continue
            obj = self._mapping(raw, where)
            connector = self._choice(obj, "connector", where, CONNECTORS)
            mapping = self._text(obj.get("mapping", school.sis), f"{where}.mapping")
            if not (_MAPPINGS_DIR / f"{mapping}.yaml").is_file():
                raise self.fail(
                    f"{where}.mapping", f"no mapping {mapping!r} in mappings/sis/", "REGISTRY-MAP"
                )
            settings = self._settings(obj, where, connector, known)
            sources.append(SisSchool(str(school.location), mapping, connector, settings))
        institution_routes = []
        for i, (item, inst) in enumerate(
            zip(top["mbo_institutions"], region.mbo_institutions, strict=True)
        ):
            where = f"mbo_institutions[{i}].route"
            if item.get("route") is None:
                raise self.fail(where, "is missing (every institution needs one)", "FIELD-MISSING")
            obj = self._mapping(item["route"], where)
            # The region names the institution's channel; a route may serve it another way
            # (a folder on a shared mount, when its SFTP server is not reachable from here).
            transport = (
                self._choice(obj, "transport", where, INSTITUTION_TRANSPORTS)
                if "transport" in obj
                else inst.transport
            )
            settings = self._settings(obj, where, transport, known)
            self._same_oin(settings, inst.oin, where)
            institution_routes.append(Route(str(inst.brin), transport, settings))
        municipality_routes = []
        for i, (item, m) in enumerate(
            zip(top["municipalities"], region.municipalities, strict=True)
        ):
            where = f"municipalities[{i}].route"
            if item.get("route") is None:
                self.warnings.append(f"municipality {m.code} has no route: its signals wait")
                continue
            obj = self._mapping(item["route"], where)
            transport = self._choice(obj, "transport", where, MUNICIPALITY_TRANSPORTS)
            settings = self._settings(obj, where, transport, known)
            self._same_oin(settings, m.oin, where)
            municipality_routes.append(Route(str(m.code), transport, settings))
        hub_oin, pki_dir = self._certificates(top.get("certificates"))
        return Registry(
            source=self.path,
            region=region,
            sources=tuple(sources),
            institution_routes=tuple(institution_routes),
            municipality_routes=tuple(municipality_routes),
            connections=connections,
            schedules=self._schedules(top.get("schedules")),
            hub_oin=hub_oin,
            pki_dir=pki_dir,
            warnings=tuple(self.warnings),
        )

    # --- pieces ---------------------------------------------------------------------------

    def _known_keys(self, top: dict[str, Any]) -> None:
        """A key the hub does not read is a typo until proven otherwise (`sis_sorce` would
        otherwise leave a school unpulled with only a warning)."""
        self._only(top, "", _KEYS[""])
        for section in ("vo_schools", "mbo_institutions", "municipalities"):
            for i, item in enumerate(top.get(section) or ()):
                self._only(item, f"{section}[{i}]", _KEYS[section])
                for part in ("sis_source", "route"):
                    if isinstance(item.get(part), dict):
                        self._only(item[part], f"{section}[{i}].{part}", _KEYS[part])
        if isinstance(top.get("certificates"), dict):
            self._only(top["certificates"], "certificates", _KEYS["certificates"])

    def _only(self, obj: object, where: str, allowed: frozenset[str]) -> None:
        if not isinstance(obj, dict):
            return  # the region loader or the section's own reader names the type error
        for key in obj:
            if key not in allowed:
                at = f"{where}.{key}" if where else str(key)
                raise self.fail(
                    at,
                    f"is not a registry key here ({', '.join(sorted(allowed))})",
                    "FIELD-UNKNOWN",
                )

    def _mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a mapping", "FIELD-TYPE")
        return value

    def _text(self, value: Any, where: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise self.fail(where, "must be a non-empty string", "FIELD-TYPE")
        return str(value)

    def _choice(self, obj: dict[str, Any], key: str, where: str, allowed: tuple[str, ...]) -> str:
        if key not in obj:
            raise self.fail(f"{where}.{key}", "is missing", "FIELD-MISSING")
        value = self._text(obj[key], f"{where}.{key}")
        if value not in allowed:
            raise self.fail(f"{where}.{key}", f"must be one of {', '.join(allowed)}", "FIELD-VALUE")
        return value

    def _settings(
        self, obj: dict[str, Any], where: str, kind: str, known: set[str]
    ) -> dict[str, str]:
        raw = obj.get("settings", {})
        settings: dict[str, str] = {}
        for key, value in self._mapping(raw, f"{where}.settings").items():
            at = f"{where}.settings.{key}"
            if _SECRET.search(str(key)):
                raise self.fail(
                    at,
                    "a secret does not belong in the registry (use a connection's password_env, "
                    "or a key_path)",
                    "REGISTRY-SECRET",
                )
            settings[str(key)] = self._text(value, at)
        conn_id = obj.get("connection")
        if conn_id is not None:
            conn_id = self._text(conn_id, f"{where}.connection")
            if conn_id not in known:
                # Airflow may hold it (a secrets backend): fine, but say it cannot be checked.
                self.warnings.append(
                    f"{where}.connection {conn_id!r} is not defined here: it must exist in Airflow"
                )
            settings["conn_id"] = conn_id
        what = "route" if where.endswith(".route") else "source"
        required = _REQUIRED[what].get(kind, ())
        if conn_id is not None:
            required = tuple(k for k in required if k not in _FROM_CONNECTION)
        for key in required:
            if key not in settings:
                raise self.fail(
                    f"{where}.settings.{key}",
                    f"is missing (a {kind} {what} needs it"
                    + (")" if conn_id else ", or name a connection)"),
                    "FIELD-MISSING",
                )
        return settings

    def _same_oin(self, settings: dict[str, str], oin: Oin, where: str) -> None:
        # The route's OIN is whom the hub encrypts to and whose certificate it accepts: it must
        # be the party's own, or a file would be readable by someone else.
        if "oin" in settings and settings["oin"] != oin.value:
            raise self.fail(f"{where}.settings.oin", "is not the OIN of this party", "REGISTRY-OIN")

    def _connections(self, raw: Any) -> tuple[ConnectionSpec, ...]:
        if raw is None:
            return ()
        specs = []
        for conn_id, value in self._mapping(raw, "connections").items():
            where = f"connections.{conn_id}"
            if not _CONN_ID.match(str(conn_id)):
                raise self.fail(where, "is not a valid connection id", "FIELD-VALUE")
            obj = self._mapping(value, where)
            allowed = {"conn_type", "host", "port", "login", "password_env", "extra"}
            for key in obj:
                if key not in allowed:
                    rule = "REGISTRY-SECRET" if _SECRET.search(str(key)) else "FIELD-UNKNOWN"
                    why = (
                        "a secret does not belong in the registry (name its variable with "
                        "password_env)"
                        if rule == "REGISTRY-SECRET"
                        else f"is not a connection field ({', '.join(sorted(allowed))})"
                    )
                    raise self.fail(f"{where}.{key}", why, rule)
            conn_type = self._choice(obj, "conn_type", where, CONNECTION_TYPES)
            port = obj.get("port")
            if port is not None and (
                isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
            ):
                raise self.fail(f"{where}.port", "must be a port number (1-65535)", "FIELD-VALUE")
            extra: dict[str, str] = {}
            for key, item in self._mapping(obj.get("extra", {}), f"{where}.extra").items():
                if _SECRET.search(str(key)):
                    raise self.fail(
                        f"{where}.extra.{key}",
                        "a secret does not belong in the registry",
                        "REGISTRY-SECRET",
                    )
                if key == "oin":  # checked per party on its route; a shared connection has none
                    raise self.fail(
                        f"{where}.extra.oin", "belongs on the party's route", "REGISTRY-OIN"
                    )
                extra[str(key)] = self._text(item, f"{where}.extra.{key}")
            specs.append(
                ConnectionSpec(
                    conn_id=str(conn_id),
                    conn_type=conn_type,
                    host=self._opt(obj, "host", where),
                    port=port,
                    login=self._opt(obj, "login", where),
                    password_env=self._opt(obj, "password_env", where),
                    extra=extra,
                )
            )
        return tuple(specs)

    def _opt(self, obj: dict[str, Any], key: str, where: str) -> str | None:
        return None if obj.get(key) is None else self._text(obj[key], f"{where}.{key}")

    def _schedules(self, raw: Any) -> dict[str, str]:
        from croniter import croniter

        schedules: dict[str, str] = {}
        for dag_id, cron in self._mapping(raw or {}, "schedules").items():
            where = f"schedules.{dag_id}"
            if dag_id not in DAG_IDS:
                raise self.fail(
                    where, f"is not a DAG of the hub ({', '.join(DAG_IDS)})", "FIELD-VALUE"
                )
            text = self._text(cron, where)
            if text not in _AIRFLOW_PRESETS and not croniter.is_valid(text):
                raise self.fail(where, "is not a cron expression", "REGISTRY-CRON")
            schedules[str(dag_id)] = text
        return schedules

    def _certificates(self, raw: Any) -> tuple[Oin | None, Path | None]:
        if raw is None:
            return None, None
        obj = self._mapping(raw, "certificates")
        hub_oin = None
        if obj.get("hub_oin") is not None:
            try:
                hub_oin = Oin.parse(self._text(obj["hub_oin"], "certificates.hub_oin"))
            except InvalidRecord as exc:
                raise self.fail("certificates.hub_oin", exc.reason, exc.rule) from None
        pki_dir = None
        if obj.get("pki_dir") is not None:
            pki_dir = (
                self.path.parent / self._text(obj["pki_dir"], "certificates.pki_dir")
            ).resolve()
        return hub_oin, pki_dir
