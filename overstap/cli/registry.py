"""`overstap registry`: the region registry as code (check, apply, Airflow Connections, schedules)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from overstap.errors import ConfigurationError, InvalidRecord

registry_app = typer.Typer(
    no_args_is_help=True,
    help="The region registry (one YAML file): parties, SIS sources, routes, schedules.",
)
console = Console()
err = Console(stderr=True)

FileArg = Annotated[Path, typer.Argument(help="The region's registry file (registry.yaml).")]


def _load(file: Path) -> object:
    from overstap.registry import load_registry

    try:
        return load_registry(file)
    except InvalidRecord as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


@registry_app.command("check")
def check(
    file: FileArg,
    pki_dir: Annotated[
        Path | None,
        typer.Option(help="Check every routed party has certificates here (default: the hub's)."),
    ] = None,
) -> None:
    """Validate a registry file: every error names the file, line and field (exit 1)."""
    from overstap.registry import Registry
    from overstap.services.registry import certificate_problems

    registry = _load(file)
    assert isinstance(registry, Registry)
    region = registry.region
    console.print(
        f"[bold green]{file}[/]: region {region.code} ({region.school_year}): "
        f"{len(region.vo_schools)} school locations ({len(registry.sources)} with a SIS source), "
        f"{len(region.mbo_institutions)} institutions, {len(region.municipalities)} municipalities "
        f"({len(registry.municipality_routes)} with a route), "
        f"{len(registry.connections)} connections, {len(registry.schedules)} schedules"
    )
    for warning in registry.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    # Where the hub's PKI is, without loading the rest of the settings (a check must run on a
    # machine that holds no pseudonym key, e.g. the region's CI).
    home = Path(os.environ.get("OVERSTAP_HOME") or ".overstap")
    default = Path(os.environ.get("OVERSTAP_PKI_DIR") or home / "pki")
    where = (pki_dir or registry.pki_dir or default).resolve()
    if where.exists():
        problems = certificate_problems(registry, where)
        for problem in problems:
            err.print(f"[bold red]certificate:[/] {escape(problem)}")
        if problems:
            raise typer.Exit(1)
        console.print(f"certificates: every routed party has its certificates in {where}")
    else:
        console.print(f"[yellow]certificates not checked:[/] {where} does not exist")


@registry_app.command("apply")
def apply(file: FileArg) -> None:
    """Make the hub's parties, calendar, SIS sources and routes what the file says (audited)."""
    from overstap.bootstrap import HubContext
    from overstap.registry import Registry
    from overstap.services.registry import apply_registry

    registry = _load(file)
    assert isinstance(registry, Registry)
    ctx = HubContext.open(migrate=True)
    try:
        result = apply_registry(ctx, registry)
    finally:
        ctx.close()
    state = "applied" if result.changed else "unchanged (nothing to apply)"
    console.print(
        f"registry {result.region} {state}: {result.sources} SIS sources, "
        f"{result.institution_routes} institution routes, "
        f"{result.municipality_routes} municipality routes, {result.removed} removed; "
        f"sha256 {result.digest[:16]}"
    )


@registry_app.command("sync-connections")
def sync_connections(file: FileArg) -> None:
    """Create or update the Airflow Connections the file defines, in the Airflow of AIRFLOW_HOME
    (passwords from the environment variables the file names)."""
    from overstap.registry import Registry
    from overstap.runtime.connections import sync_connections as sync

    registry = _load(file)
    assert isinstance(registry, Registry)
    try:
        result = sync(registry.connections, os.environ)
    except ConfigurationError as exc:
        err.print(f"[bold red]configuration error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(
        f"Airflow connections: {len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged"
    )


@registry_app.command("schedules")
def schedules(file: FileArg) -> None:
    """Print the environment lines that give each DAG the file's schedule (for the Airflow
    services' environment: docker-compose's env_file, a systemd unit)."""
    from overstap.registry import Registry

    registry = _load(file)
    assert isinstance(registry, Registry)
    for name, cron in sorted(registry.schedule_env().items()):
        print(f"{name}={cron}")
