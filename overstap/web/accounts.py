"""Web accounts and sessions: scrypt password hashes in a file, signed cookies that expire.

Accounts live in `$OVERSTAP_HOME/web-users.json` (name -> role and scrypt hash; no passwords).
A session is a cookie `name|role|expires` with an HMAC-SHA256 under a key kept in
`$OVERSTAP_HOME/web-session.key` (made on first use, mode 0600): the server keeps no session
state, a changed cookie is refused, and an expired one sends the user to the login page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

ROLES = ("auditor", "admin")
SESSION_SECONDS = 30 * 60
# scrypt cost: about 50 ms per check here; a stolen file costs an attacker as much per guess.
_N, _R, _P = 2**15, 8, 1


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 2**20)


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str


class Accounts:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        data: dict[str, dict[str, str]] = json.loads(self.path.read_text("utf-8"))
        return data

    def add(self, name: str, role: str, password: str) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError("a name is letters, digits, '.', '-' and '_'")
        if len(password) < 12:
            raise ValueError("a password has at least 12 characters")
        salt = secrets.token_bytes(16)
        users = self._load()
        users[name] = {
            "role": role,
            "scrypt": f"{_N}${_R}${_P}${salt.hex()}${_hash(password, salt).hex()}",
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(users, indent=2, sort_keys=True), "utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)

    def check(self, name: str, password: str) -> Account | None:
        user = self._load().get(name)
        if user is None:
            _hash(password, b"0" * 16)  # the same work for an unknown name: no timing oracle
            return None
        n, r, p, salt, expected = user["scrypt"].split("$")
        got = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
            maxmem=64 * 2**20,
        )  # fmt: skip
        if not hmac.compare_digest(got, bytes.fromhex(expected)):
            return None
        return Account(name, user["role"])


class Sessions:
    def __init__(self, key_path: Path, seconds: int = SESSION_SECONDS) -> None:
        self.seconds = seconds
        if not key_path.exists():
            key_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        self._key = key_path.read_bytes()

    def issue(self, account: Account, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.seconds)
        body = base64.urlsafe_b64encode(
            f"{account.name}|{account.role}|{expires}".encode()
        ).decode()
        return f"{body}.{self._mac(body)}"

    def read(self, token: str | None, now: float | None = None) -> Account | None:
        if not token or "." not in token:
            return None
        body, mac = token.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            name, role, expires = base64.urlsafe_b64decode(body).decode().split("|")
        except ValueError:
            return None
        if int(expires) < (now or time.time()) or role not in ROLES:
            return None
        return Account(name, role)

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
