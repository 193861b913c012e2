"""The region registry file (overstap.registry.load_registry): a synthetic region's region.yaml
with sources, routes, connections, schedules and certificates added, as `Peers.registry` writes
it. A good file loads; every error names the file, the line of the offending key, the dotted
field and the rule."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from registry_files import HUB_OIN, SFTP_CONN, SOAP_CONN, registry_data, write_registry

from overstap.region import RegionDataError, load_region
from overstap.registry import ConnectionSpec, RegistryError, load_registry


@pytest.fixture(scope="module")
def region_dir(registry_region: Path) -> Path:
    return registry_region


@pytest.fixture
def data(region_dir: Path) -> dict[str, Any]:
    return registry_data(region_dir)


def write(tmp_path: Path, data: dict[str, Any], name: str = "registry.yaml") -> tuple[Path, str]:
    return write_registry(tmp_path / name, data)


def line_of(text: str, needle: str, *, after: str | None = None) -> int:
    """The 1-based number of the first line holding `needle` (after the line holding `after`);
    quotes are ignored (the dumper quotes a digit string only when it could be read as a number)."""
    lines = text.splitlines()
    start = 0 if after is None else line_of(text, after)
    for number, line in enumerate(lines[start:], start=start + 1):
        if needle in line.replace("'", ""):
            return number
    raise AssertionError(f"{needle!r} not in the file")


def refused(path: Path) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    return info.value


def assert_names(exc: RegistryError, path: Path, line: int, field: str, rule: str) -> None:
    message = str(exc)
    assert message.startswith(f"{path} line {line}: {field}: "), message
    assert message.endswith(f"[rule {rule}]"), message
    assert (exc.field, exc.rule) == (field, rule)


# --- a good file ------------------------------------------------------------------------------


def test_a_valid_registry_loads(tmp_path: Path, region_dir: Path, data: dict[str, Any]) -> None:
    path, _ = write(tmp_path, data)
    registry = load_registry(path)
    region = load_region(region_dir)
    assert registry.source == path
    assert registry.region == region

    sis = str(region_dir.resolve() / "sis" / "{location}")
    assert [(s.location, s.mapping, s.connector, dict(s.settings)) for s in registry.sources] == [
        (str(s.location), s.sis, "file", {"folder": sis}) for s in region.vo_schools
    ]

    soap, sftp = region.mbo_institutions[:2]
    routes = {r.recipient: r for r in registry.institution_routes}
    assert set(routes) == {str(i.brin) for i in region.mbo_institutions}
    assert routes[str(soap.brin)].transport == "soap"
    assert dict(routes[str(soap.brin)].settings) == {"oin": soap.oin.value, "conn_id": SOAP_CONN}
    assert routes[str(sftp.brin)].transport == "sftp"
    assert dict(routes[str(sftp.brin)].settings) == {
        "oin": sftp.oin.value,
        "folder": f"mbo/{sftp.brin}/in",
        "conn_id": SFTP_CONN,
    }

    first, second = region.municipalities[:2]
    assert [(r.recipient, r.transport) for r in registry.municipality_routes] == [
        (str(first.code), "sftp"),
        (str(second.code), "folder"),
    ]
    assert registry.municipality_routes[0].settings["conn_id"] == SFTP_CONN
    assert registry.municipality_routes[1].settings["folder"] == "/srv/drops/gm/in"

    conns = {c.conn_id: c for c in registry.connections}
    assert set(conns) == {SOAP_CONN, SFTP_CONN}
    assert conns[SOAP_CONN] == ConnectionSpec(
        SOAP_CONN, "https", extra={"endpoint": "https://mbo.example/soap"}
    )
    assert conns[SFTP_CONN] == ConnectionSpec(
        SFTP_CONN,
        "sftp",
        host="sftp.example",
        port=2222,
        login="hub",
        password_env="OVERSTAP_SFTP_PASSWORD",
        extra={"key_path": "/run/secrets/sftp_key", "host_key": "ssh-ed25519 AAAAC3Nz"},
    )

    assert dict(registry.schedules) == {
        "overstap_signals": "0 6 * * *",
        "overstap_delivery": "*/15 6-20 * * *",
    }
    assert registry.hub_oin is not None and registry.hub_oin.value == HUB_OIN
    assert registry.pki_dir == (tmp_path / "pki").resolve()  # relative to the file

    # Two municipalities have no route: not an error, but said.
    assert list(registry.warnings) == [
        f"municipality {m.code} has no route: its signals wait" for m in region.municipalities[2:]
    ]


def test_schedule_env_names_each_dag_variable(tmp_path: Path, data: dict[str, Any]) -> None:
    data["schedules"] = {
        "overstap_sis_pull": "0 5 * * 1-5",
        "overstap_signals": "0 6 * * *",
        "overstap_status_intake": "*/30 6-22 * * *",
        "overstap_audit_checkpoint": "@hourly",
    }
    registry = load_registry(write(tmp_path, data)[0])
    assert registry.schedule_env() == {
        "OVERSTAP_SCHEDULE_SIS_PULL": "0 5 * * 1-5",
        "OVERSTAP_SCHEDULE_SIGNALS": "0 6 * * *",
        "OVERSTAP_SCHEDULE_STATUS_INTAKE": "*/30 6-22 * * *",
        "OVERSTAP_SCHEDULE_AUDIT_CHECKPOINT": "@hourly",
    }


def test_without_optional_sections(tmp_path: Path, data: dict[str, Any]) -> None:
    for key in ("connections", "schedules", "certificates"):
        del data[key]
    for inst in data["mbo_institutions"]:
        del inst["route"]["connection"]
    soap, sftp = data["mbo_institutions"][:2]
    soap["route"]["settings"]["endpoint"] = "https://mbo.example/soap"
    sftp["route"] = {"transport": "folder", "settings": {"oin": sftp["oin"], "folder": "/drop"}}
    del data["municipalities"][0]["route"]
    registry = load_registry(write(tmp_path, data)[0])
    assert registry.connections == () and registry.schedules == {} and registry.schedule_env() == {}
    assert registry.hub_oin is None and registry.pki_dir is None
    # A route may serve an institution another way than the region's channel.
    assert [r.transport for r in registry.institution_routes] == ["soap", "folder"]
    assert len(registry.municipality_routes) == 1


# --- warnings ---------------------------------------------------------------------------------


def test_a_connection_named_but_not_defined_is_a_warning(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    data["mbo_institutions"][0]["route"]["connection"] = "overstap_in_airflow_only"
    registry = load_registry(write(tmp_path, data)[0])
    assert registry.institution_routes[0].settings["conn_id"] == "overstap_in_airflow_only"
    assert (
        "mbo_institutions[0].route.connection 'overstap_in_airflow_only' is not defined here: "
        "it must exist in Airflow"
    ) in registry.warnings


def test_a_school_without_sis_source_is_a_warning(tmp_path: Path, data: dict[str, Any]) -> None:
    school = data["vo_schools"][0]
    del school["sis_source"]
    registry = load_registry(write(tmp_path, data)[0])
    location = f"{school['brin']}{school['vestiging']}"
    assert location not in {s.location for s in registry.sources}
    assert f"school {location} has no sis_source: not pulled" in registry.warnings


def test_a_municipality_without_route_is_a_warning(tmp_path: Path, data: dict[str, Any]) -> None:
    for m in data["municipalities"]:
        m.pop("route", None)
    registry = load_registry(write(tmp_path, data)[0])
    assert registry.municipality_routes == ()
    assert [w for w in registry.warnings if w.startswith("municipality")] == [
        f"municipality {m['code']} has no route: its signals wait" for m in data["municipalities"]
    ]


# --- errors: file, line, field, rule ------------------------------------------------------------


def test_an_institution_without_route(tmp_path: Path, data: dict[str, Any]) -> None:
    inst = data["mbo_institutions"][1]
    del inst["route"]
    path, text = write(tmp_path, data)
    exc = refused(path)
    # No route key: the institution's own line.
    assert_names(
        exc,
        path,
        line_of(text, f"- brin: {inst['brin']}"),
        "mbo_institutions[1].route",
        "FIELD-MISSING",
    )
    assert "every institution needs one" in exc.reason


def test_an_unknown_connector(tmp_path: Path, data: dict[str, Any]) -> None:
    data["vo_schools"][1]["sis_source"]["connector"] = "ftp"
    path, text = write(tmp_path, data)
    exc = refused(path)
    field = "vo_schools[1].sis_source.connector"
    assert_names(exc, path, line_of(text, "connector: ftp"), field, "FIELD-VALUE")
    assert "file, sftp, rest, soap" in exc.reason


def test_an_unknown_transport(tmp_path: Path, data: dict[str, Any]) -> None:
    data["municipalities"][1]["route"]["transport"] = "email"
    path, text = write(tmp_path, data)
    field = "municipalities[1].route.transport"
    assert_names(refused(path), path, line_of(text, "transport: email"), field, "FIELD-VALUE")


def test_a_mapping_that_does_not_exist(tmp_path: Path, data: dict[str, Any]) -> None:
    data["vo_schools"][0]["sis_source"]["mapping"] = "parnassys"
    path, text = write(tmp_path, data)
    exc = refused(path)
    field = "vo_schools[0].sis_source.mapping"
    assert_names(exc, path, line_of(text, "mapping: parnassys"), field, "REGISTRY-MAP")
    assert "'parnassys'" in exc.reason


def test_a_missing_setting_names_the_settings_line(tmp_path: Path, data: dict[str, Any]) -> None:
    # Without a connection an SFTP route must say host, username, key and host key itself.
    route = data["mbo_institutions"][1]["route"]
    del route["connection"]
    path, text = write(tmp_path, data)
    exc = refused(path)
    brin = data["mbo_institutions"][1]["brin"]
    line = line_of(text, "settings:", after=f"- brin: {brin}")
    assert_names(exc, path, line, "mbo_institutions[1].route.settings.host", "FIELD-MISSING")
    assert "or name a connection" in exc.reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda d: d["mbo_institutions"][1]["route"]["settings"].update(password="hunter2"),
            "mbo_institutions[1].route.settings.password",
        ),
        (
            lambda d: d["vo_schools"][0]["sis_source"]["settings"].update(api_token="hunter2"),
            "vo_schools[0].sis_source.settings.api_token",
        ),
        (
            lambda d: d["connections"][SFTP_CONN].update(password="hunter2"),
            f"connections.{SFTP_CONN}.password",
        ),
        (
            lambda d: d["connections"][SOAP_CONN]["extra"].update(client_secret="hunter2"),
            f"connections.{SOAP_CONN}.extra.client_secret",
        ),
    ],
    ids=["route-settings", "source-settings", "connection", "connection-extra"],
)
def test_a_secret_in_the_file_is_refused(
    tmp_path: Path,
    data: dict[str, Any],
    change: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    change(data)
    path, text = write(tmp_path, data)
    exc = refused(path)
    assert_names(exc, path, line_of(text, ": hunter2"), field, "REGISTRY-SECRET")
    assert "hunter2" not in str(exc)


def test_an_unknown_connection_field(tmp_path: Path, data: dict[str, Any]) -> None:
    data["connections"][SFTP_CONN]["hostname"] = "sftp.example"
    path, text = write(tmp_path, data)
    field = f"connections.{SFTP_CONN}.hostname"
    assert_names(refused(path), path, line_of(text, "hostname:"), field, "FIELD-UNKNOWN")


def test_a_bad_port(tmp_path: Path, data: dict[str, Any]) -> None:
    data["connections"][SFTP_CONN]["port"] = 70000
    path, text = write(tmp_path, data)
    field = f"connections.{SFTP_CONN}.port"
    assert_names(refused(path), path, line_of(text, "port: 70000"), field, "FIELD-VALUE")


@pytest.mark.parametrize("cron", ["0 25 * * *", "0 6 * *", "every day", "@dialy"])
def test_a_bad_cron(tmp_path: Path, data: dict[str, Any], cron: str) -> None:
    data["schedules"]["overstap_signals"] = cron
    path, text = write(tmp_path, data)
    line = line_of(text, "overstap_signals:", after="schedules:")
    assert_names(refused(path), path, line, "schedules.overstap_signals", "REGISTRY-CRON")


@pytest.mark.parametrize("preset", ["@daily", "@hourly", "@quarterly", "@once", "@continuous"])
def test_airflow_presets_are_schedules(tmp_path: Path, data: dict[str, Any], preset: str) -> None:
    data["schedules"]["overstap_signals"] = preset
    registry = load_registry(write(tmp_path, data)[0])
    assert registry.schedule_env()["OVERSTAP_SCHEDULE_SIGNALS"] == preset


def test_an_unknown_dag_in_schedules(tmp_path: Path, data: dict[str, Any]) -> None:
    data["schedules"]["overstap_nightly"] = "0 1 * * *"
    path, text = write(tmp_path, data)
    exc = refused(path)
    line = line_of(text, "overstap_nightly:")
    assert_names(exc, path, line, "schedules.overstap_nightly", "FIELD-VALUE")
    assert "overstap_sis_pull" in exc.reason


def test_a_route_oin_that_is_not_the_partys(tmp_path: Path, data: dict[str, Any]) -> None:
    other = data["municipalities"][3]["oin"]  # another municipality's OIN
    data["municipalities"][0]["route"]["settings"]["oin"] = other
    path, text = write(tmp_path, data)
    code = data["municipalities"][0]["code"]
    line = line_of(text, f"oin: {other}", after=f"- code: {code}")
    assert line < line_of(text, f"- code: {data['municipalities'][1]['code']}")  # in the route
    field = "municipalities[0].route.settings.oin"
    assert_names(refused(path), path, line, field, "REGISTRY-OIN")


def test_an_institution_route_with_the_wrong_oin(tmp_path: Path, data: dict[str, Any]) -> None:
    data["mbo_institutions"][0]["route"]["settings"]["oin"] = HUB_OIN
    path, text = write(tmp_path, data)
    field = "mbo_institutions[0].route.settings.oin"
    assert_names(refused(path), path, line_of(text, f"oin: {HUB_OIN}"), field, "REGISTRY-OIN")


def test_a_bad_hub_oin(tmp_path: Path, data: dict[str, Any]) -> None:
    data["certificates"]["hub_oin"] = "12345"
    path, text = write(tmp_path, data)
    exc = refused(path)
    assert str(exc).startswith(f"{path} line {line_of(text, 'hub_oin:')}: certificates.hub_oin: ")


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path, data: dict[str, Any]) -> None:
    _, text = write(tmp_path, data)
    lines = text.splitlines()
    number = line_of(text, "transport: sftp")
    lines[number - 1] += ": oops"  # `transport: sftp: oops`
    path = tmp_path / "broken.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    exc = refused(path)
    assert_names(exc, path, number, "yaml", "YAML-SYNTAX")
    assert "not valid YAML" in exc.reason


def test_a_region_error_keeps_its_line(tmp_path: Path, data: dict[str, Any]) -> None:
    data["municipalities"][2]["code"] = "XX12"
    path, text = write(tmp_path, data)
    exc = refused(path)
    assert isinstance(exc, RegionDataError)  # a RegistryError is a RegionDataError
    assert_names(
        exc, path, line_of(text, "- code: XX12"), "municipalities[2].code", "GEMEENTE-FORMAT"
    )


def test_a_missing_file(tmp_path: Path) -> None:
    exc = refused(tmp_path / "nowhere.yaml")
    assert exc.rule == "REGISTRY-MISSING" and str(tmp_path / "nowhere.yaml") in str(exc)


def test_errors_are_reported_at_their_own_line_not_the_first_match(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    # The same key at many places: the error is at the one that is wrong.
    data["vo_schools"][1]["sis_source"]["settings"] = "not a mapping"
    path, text = write(tmp_path, data)
    line = line_of(text, "settings: not a mapping")
    assert line > line_of(text, "settings:", after="vo_schools:")
    assert_names(refused(path), path, line, "vo_schools[1].sis_source.settings", "FIELD-TYPE")


# --- secrets stay out of reprs ------------------------------------------------------------------


def test_a_registry_holds_no_secret_and_shows_no_extras(
    tmp_path: Path, data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The password stays in the environment: loading never reads it, and nothing the registry
    # holds or shows carries it.
    monkeypatch.setenv("OVERSTAP_SFTP_PASSWORD", "correct-horse-battery")
    registry = load_registry(write(tmp_path, data)[0])
    spec = next(c for c in registry.connections if c.conn_id == SFTP_CONN)
    assert spec.password_env == "OVERSTAP_SFTP_PASSWORD"
    assert "correct-horse-battery" not in repr(dataclasses.astuple(spec))
    shown = repr(spec)
    assert SFTP_CONN in shown and "sftp.example" in shown
    assert "/run/secrets/sftp_key" not in shown  # extras are not shown either


def test_an_oin_in_a_connection_is_refused(tmp_path: Path, data: dict[str, Any]) -> None:
    # A connection is shared; the OIN is checked per party on its route (and a Connection's
    # extra can never override it at run time: overstap.runtime.connections).
    data["connections"][SFTP_CONN]["extra"]["oin"] = HUB_OIN
    path, _ = write(tmp_path, data)
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    assert caught.value.rule == "REGISTRY-OIN"
    assert caught.value.field == f"connections.{SFTP_CONN}.extra.oin"


def test_a_rest_source_needs_client_credentials_from_a_connection(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    school = data["vo_schools"][0]
    school["sis_source"] = {
        "connector": "rest",
        "mapping": "rest-json",
        "settings": {"base_url": "https://sis.example/api/v1"},
    }
    with pytest.raises(RegistryError) as caught:
        load_registry(write(tmp_path, data)[0])
    assert caught.value.field == "vo_schools[0].sis_source.settings.client_id"
    assert "name a connection" in caught.value.reason
    school["sis_source"]["connection"] = "overstap_sis_rest"  # login/password: id and secret
    registry = load_registry(write(tmp_path, data)[0])
    assert registry.sources[0].settings["conn_id"] == "overstap_sis_rest"


# --- SIS sources need what their connector needs, not a route's OIN ----------------------------


def test_an_sftp_or_soap_source_through_a_connection_needs_no_oin(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    data["vo_schools"][0]["sis_source"] = {
        "connector": "sftp",
        "connection": SFTP_CONN,
        "settings": {"folder": "exports/{location}"},
    }
    data["vo_schools"][1]["sis_source"] = {
        "connector": "soap",
        "mapping": "xml-export",
        "connection": "overstap_sis_soap",
    }
    data["connections"]["overstap_sis_soap"] = {
        "conn_type": "https",
        "login": "hub",
        "password_env": "OVERSTAP_SIS_PASSWORD",
        "extra": {"endpoint": "https://sis.example/soap"},
    }
    registry = load_registry(write(tmp_path, data)[0])
    assert [(s.connector, s.mapping, dict(s.settings)) for s in registry.sources] == [
        (
            "sftp",
            data["vo_schools"][0]["sis"],
            {"folder": "exports/{location}", "conn_id": SFTP_CONN},
        ),
        ("soap", "xml-export", {"conn_id": "overstap_sis_soap"}),
    ]


def test_a_soap_source_without_connection_is_told_to_name_one(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    data["vo_schools"][0]["sis_source"] = {
        "connector": "soap",
        "mapping": "xml-export",
        "settings": {"endpoint": "https://sis.example/soap", "username": "hub"},
    }
    path, text = write(tmp_path, data)
    exc = refused(path)
    line = line_of(text, "settings:", after="connector: soap")
    field = "vo_schools[0].sis_source.settings.password"
    assert_names(exc, path, line, field, "FIELD-MISSING")
    assert "or name a connection" in exc.reason


# --- the documentation's example ------------------------------------------------------------------


def test_the_example_in_the_docs_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "registry.md").read_text("utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "registry.yaml"
    path.write_text(example, encoding="utf-8")
    registry = load_registry(path)
    assert [(s.location, s.connector, s.mapping) for s in registry.sources] == [
        ("12AB00", "file", "magister"),
        ("12AB01", "soap", "xml-export"),
    ]
    assert [(r.recipient, r.transport) for r in registry.institution_routes] == [
        ("25MB", "soap"),
        ("26XY", "sftp"),
    ]
    assert [(r.recipient, r.transport) for r in registry.municipality_routes] == [
        ("GM0153", "sftp")
    ]
    assert registry.warnings == ()
    assert {c.conn_id: c.password_env for c in registry.connections}["overstap_sis_horizon"] == (
        "OVERSTAP_SIS_HORIZON_PASSWORD"
    )
    assert registry.schedule_env() == {
        "OVERSTAP_SCHEDULE_SIS_PULL": "0 5 * * 1-5",
        "OVERSTAP_SCHEDULE_SIGNALS": "0 6 * * *",
    }
    assert registry.hub_oin is not None and registry.pki_dir == Path("/run/secrets/pki")


@pytest.mark.parametrize(
    ("place", "typo"),
    [
        ("vo_schools[0]", "sis_sorce"),
        ("mbo_institutions[0].route", "conection"),
        ("", "schedule"),
        ("certificates", "pki_directory"),
    ],
)
def test_a_key_the_hub_does_not_read_is_refused_where_it_stands(
    tmp_path: Path, data: dict[str, Any], place: str, typo: str
) -> None:
    target: Any = data
    for part in filter(None, place.replace("[", ".").replace("]", "").split(".")):
        target = target[int(part)] if part.isdigit() else target[part]
    target[typo] = "x"
    path, text = write(tmp_path, data)
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.strip().startswith(f"{typo}:"))
    assert caught.value.rule == "FIELD-UNKNOWN"
    assert caught.value.field == (f"{place}.{typo}" if place else typo)
    assert f"{path} line {line}:" in str(caught.value)
