"""What Airflow tasks call: the one module of `overstap` that imports Airflow (ARCHITECTURE.md).

DAG files stay thin: one call into this module per task. Here the hub's error taxonomy becomes
Airflow outcomes, in one place:
- `RetryableDeliveryError` (and anything unexpected) -> the task fails and Airflow retries it;
- `ConfigurationError`, `RejectedByRecipient` -> `AirflowFailException`: no retry, a person must act.
Tasks return ids and counts only (XCom never carries personal data).

Nothing here runs at import: DAG parsing must not touch the database or the network.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from airflow.exceptions import AirflowFailException

from overstap.domain.errors import ConfigurationError, RejectedByRecipient

P = ParamSpec("P")
R = TypeVar("R")


def airflow_outcome(fn: Callable[P, R]) -> Callable[P, R]:
    """Translate the hub's permanent errors into a failure Airflow does not retry."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (ConfigurationError, RejectedByRecipient) as exc:
            raise AirflowFailException(str(exc)) from exc

    return wrapper


@airflow_outcome
def sis_schools() -> list[str]:
    """Every school location with a configured SIS source (the mapped task's input)."""
    from overstap.bootstrap import HubContext
    from overstap.services.sis_sources import configured_locations

    ctx = HubContext.open()
    try:
        return configured_locations(ctx)
    finally:
        ctx.close()


@airflow_outcome
def pull_school(location: str) -> dict[str, Any]:
    """One school's pull; returns counts for the task log and XCom."""
    from overstap.bootstrap import HubContext
    from overstap.runtime.wiring import sis_connector
    from overstap.services.sis_sources import run_pull

    ctx = HubContext.open()
    try:
        report = run_pull(ctx, location, sis_connector)
    finally:
        ctx.close()
    return report.counts()
