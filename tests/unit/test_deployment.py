"""docker-compose.yml is for deployments (no Docker engine here): check its shape by parsing it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer", "worker")


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_the_airflow_services_and_two_databases() -> None:
    services = _compose()["services"]
    for name in (
        "hub-db",
        "airflow-db",
        "redis",
        "migrate",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "worker",
        "status-intake",
        "sftp",
    ):
        assert name in services, name
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        # The hub's data never lives in Airflow's metadata database (ARCHITECTURE.md).
        assert "hub-db" in env["OVERSTAP_DATABASE_URL"]
        assert "airflow-db" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg")
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert (
            services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )


def test_compose_keeps_secrets_out_of_the_file() -> None:
    compose = _compose()
    text = (ROOT / "docker-compose.yml").read_text()
    assert "PRIVATE KEY" not in text
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"KEY|PASSPHRASE|PASSWORD|SECRET", key) and not key.endswith("_FILE"):
                raise AssertionError(f"{key} is set inline; use a secret file")
            assert not re.search(r"://[^@/]+:[^@/]+@", str(value)), f"{key} holds a password"
    assert {"pseudonym_key", "key_passphrase", "pki"} <= set(compose["secrets"])


def test_databases_are_not_published_and_the_ui_only_on_loopback() -> None:
    services = _compose()["services"]
    for name in ("hub-db", "airflow-db"):
        assert "ports" not in services[name]
        assert services[name]["networks"] == ["internal"]
    for mapping in services["api-server"]["ports"]:
        assert mapping.startswith("127.0.0.1:")


def test_the_image_is_built_from_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements.lock" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.M), "the hub must not run as root"


def test_celery_workers_on_redis_and_only_they_reach_outside() -> None:
    services = _compose()["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
        assert "airflow-db" in env["AIRFLOW__CELERY__RESULT_BACKEND"]
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/overstap/plugins"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        # The tasks that call schools, institutions and municipalities run on the workers.
        assert ("outbound" in services[name]["networks"]) == (name == "worker")
    assert services["worker"]["command"] == ["airflow", "celery", "worker"]
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["redis"]["networks"] == ["internal"] and "ports" not in services["redis"]


def test_every_long_running_service_has_a_health_check() -> None:
    for name, service in _compose()["services"].items():
        if name == "migrate":
            assert service["restart"] == "no"  # runs once, the others wait for it
            continue
        assert "healthcheck" in service and service["healthcheck"]["test"], name
        assert service.get("restart") == "unless-stopped", name


def test_the_image_carries_the_plugin_and_the_deploy_extras_are_locked() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY plugins ./plugins" in dockerfile
    lock = (ROOT / "requirements.lock").read_text()
    assert "apache-airflow-providers-celery==" in lock and "\nredis==" in lock
    assert (ROOT / "plugins" / "overstap_auditor.py").exists()


def test_the_status_intake_serves_mutual_tls_on_its_own_port() -> None:
    intake = _compose()["services"]["status-intake"]
    assert intake["command"][:2] == ["overstap", "serve"]
    # Mutual TLS ends in the hub: published as is, not behind the loopback-only UI proxy.
    assert intake["ports"] == ["8443:8443"] and "--port" in intake["command"]
    assert intake["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "hub-db" in intake["environment"]["OVERSTAP_DATABASE_URL"]


def test_schedules_and_registry_come_from_beside_the_file() -> None:
    from overstap.config import schedule_variable

    services = _compose()["services"]
    # The dag-processor parses the DAG files (their schedules); every Airflow service and the
    # migrate job see the same environment and the registry.
    for name in (*AIRFLOW_SERVICES, "migrate"):
        assert services[name]["env_file"] == [{"path": "./schedules.env", "required": False}]
        assert "./registry:/etc/overstap:ro" in services[name]["volumes"], name
    # The variables `overstap registry schedules` writes are those the DAG files read.
    for dag_file in (ROOT / "dags").glob("overstap_*.py"):
        dag_id = dag_file.stem
        assert f'policy.schedule("{dag_id}"' in dag_file.read_text(), dag_id
        assert schedule_variable(dag_id).startswith("OVERSTAP_SCHEDULE_")
    assert services["status-intake"]["init"] is True
