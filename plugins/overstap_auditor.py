"""Airflow 3 plugin: the Overstap audit web view inside Airflow's api-server, at /overstap.

Importing it opens nothing (the app opens the hub on its first request), so plugin loading at
api-server start stays fast and works before the hub's database exists. Accounts are the hub's
own (`overstap web adduser`), not Airflow's.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from overstap.web.app import create_app


class OverstapAuditorPlugin(AirflowPlugin):
    name = "overstap_auditor"
    fastapi_apps = [  # noqa: RUF012 (Airflow reads this class attribute as it is)
        {
            "app": create_app(secure_cookies=True),
            "url_prefix": "/overstap",
            "name": "Overstap audit",
        }
    ]
