"""Where the hub is wired to the outside world and to Airflow (ARCHITECTURE.md).

- `wiring`: which adapter in `connectors/` serves which port (no Airflow import; the CLI uses it).
- `tasks`: what Airflow tasks call; the only place that imports Airflow.
"""
