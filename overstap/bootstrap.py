"""Composition root: settings, engine and pseudonymizer, built when a command or task starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from overstap.audit.pseudonym import Pseudonymizer
from overstap.config import Settings
from overstap.errors import ConfigurationError
from overstap.store.engine import make_engine


@dataclass
class HubContext:
    settings: Settings
    engine: Engine
    pseudonyms: Pseudonymizer

    @classmethod
    def open(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        migrate: bool = False,
        require_schema: bool = True,
    ) -> HubContext:
        """`migrate` upgrades the schema first; otherwise an out-of-date schema is refused with
        the command that fixes it, instead of failing later on a missing table."""
        settings = Settings.from_env(env)
        engine = make_engine(settings.database_url)
        from overstap.store import migrate as migrations  # alembic is slow to import: on demand

        if migrate:
            migrations.upgrade(engine)
        elif require_schema:
            current, head = migrations.current_revision(engine), migrations.head_revision()
            if current != head:
                engine.dispose()
                raise ConfigurationError(
                    "database",
                    f"schema is at {current or 'nothing'}, this version needs {head}: "
                    "run `overstap db upgrade`",
                )
        return cls(settings, engine, Pseudonymizer(settings.pseudonym_key))

    def close(self) -> None:
        self.engine.dispose()
