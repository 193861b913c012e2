"""Typed settings, read when a command or task runs (never at import time).

Secrets (the pseudonym key, key passphrases) come from the environment or from files under the
hub's home with mode 0600; they never appear in a repr or a log line.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from overstap.errors import ConfigurationError

PSEUDONYM_KEY_MIN_BYTES = 32


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    pki_dir: Path
    pseudonym_key: bytes = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, create: bool = True) -> Settings:
        """Settings from `OVERSTAP_*` variables, with embedded defaults under `OVERSTAP_HOME`.

        `create` makes the home and a dev pseudonym key on first use, so the demo runs on a fresh
        machine; production sets `OVERSTAP_PSEUDONYM_KEY` (hex, at least 32 bytes) from a secret.
        """
        env = os.environ if env is None else env
        home = Path(env.get("OVERSTAP_HOME", ".overstap")).resolve()
        if create:
            home.mkdir(parents=True, exist_ok=True)
        url = env.get("OVERSTAP_DATABASE_URL") or f"sqlite:///{home / 'overstap.db'}"
        pki = Path(env.get("OVERSTAP_PKI_DIR", str(home / "pki"))).resolve()
        key = _pseudonym_key(env, home, create=create)
        return cls(home=home, database_url=url, pki_dir=pki, pseudonym_key=key)


def _pseudonym_key(env: Mapping[str, str], home: Path, *, create: bool) -> bytes:
    raw = env.get("OVERSTAP_PSEUDONYM_KEY")
    key_file = env.get("OVERSTAP_PSEUDONYM_KEY_FILE")
    if not raw and key_file:
        # Docker/Kubernetes secrets arrive as files; the variable names the file.
        try:
            raw = Path(key_file).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(
                "OVERSTAP_PSEUDONYM_KEY_FILE", f"cannot read {key_file}: {exc.strerror}"
            ) from None
    if raw:
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            raise ConfigurationError("OVERSTAP_PSEUDONYM_KEY", "is not hexadecimal") from None
        if len(key) < PSEUDONYM_KEY_MIN_BYTES:
            raise ConfigurationError(
                "OVERSTAP_PSEUDONYM_KEY",
                f"has {len(key)} bytes, at least {PSEUDONYM_KEY_MIN_BYTES} are required",
            )
        return key
    path = home / "pseudonym.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    if not create:
        raise ConfigurationError(
            "OVERSTAP_PSEUDONYM_KEY", f"not set and no key file at {path} (run `overstap init`)"
        )
    # Dev default: a random key kept beside the database. Losing it breaks the link between
    # pseudonyms and people, which is the point; production supplies it from a secrets backend.
    key = secrets.token_bytes(PSEUDONYM_KEY_MIN_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


def schedule_variable(dag_id: str) -> str:
    """The environment variable that sets a DAG's schedule (`overstap registry schedules`)."""
    return f"OVERSTAP_SCHEDULE_{dag_id.removeprefix('overstap_').upper()}"
