"""Each DAG's schedule: the registry's (as environment), else the DAG file's default.

Read from the environment because a schedule is needed when the DAG file is parsed, and parsing
must not touch a file, a database or the network; `overstap registry schedules` prints the lines
for the Airflow services' environment.
"""

from __future__ import annotations

import os

from overstap.config import schedule_variable


def schedule(dag_id: str, default: str) -> str:
    return os.environ.get(schedule_variable(dag_id)) or default
