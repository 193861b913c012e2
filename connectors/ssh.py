"""SSH/SFTP connections with a pinned host key: the one way the hub opens an SFTP session.

A host key is configured as `<type> <base64>` (the providers' `host_key` format, also the
`.pub`/known_hosts form); a server presenting any other key is refused before authenticating.
Open one connection per batch and reuse it: a new SSH connection costs 120-240 ms here.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from overstap.domain.errors import ConfigurationError, RetryableDeliveryError


def pinned_host_key(line: str, setting: str = "host_key") -> paramiko.PKey:
    """`ssh-ed25519 AAAA...` -> the key object; anything else is a configuration error."""
    parts = line.split()
    if len(parts) < 2:
        raise ConfigurationError(
            setting, "must be '<key type> <base64 key>', e.g. ssh-ed25519 AAAA..."
        )
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1], validate=True))
    except (binascii.Error, ValueError, paramiko.SSHException) as exc:
        raise ConfigurationError(
            setting, f"is not a usable {parts[0]} public key ({exc})"
        ) from None


@dataclass(frozen=True)
class SftpTarget:
    """Where and as whom; `key_path` is a private key file readable only by the hub."""

    host: str
    port: int
    username: str
    key_path: Path
    host_key: str
    timeout: float = 30.0
    key_passphrase: str | None = field(default=None, repr=False)


def open_sftp(target: SftpTarget) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    """Connect with the pinned host key and the private key; the caller closes the client.

    Network trouble and a busy server are retryable (paramiko reports a connection reset during
    the handshake as EOFError, not as an OSError); a wrong host key or a refused key is a
    configuration problem (retrying would not help and a changed host key must be looked at).
    """
    ssh = paramiko.SSHClient()
    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
    host_key = pinned_host_key(target.host_key)
    name = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    ssh.get_host_keys().add(name, host_key.get_name(), host_key)
    try:
        pkey = paramiko.PKey.from_path(target.key_path, password=target.key_passphrase)
    except (OSError, paramiko.SSHException) as exc:
        raise ConfigurationError("key_path", f"cannot load the SSH private key ({exc})") from None
    try:
        ssh.connect(
            target.host,
            port=target.port,
            username=target.username,
            pkey=pkey,
            timeout=target.timeout,
            banner_timeout=target.timeout,
            auth_timeout=target.timeout,
            # Opening the SFTP subsystem has no timeout of its own in paramiko otherwise.
            channel_timeout=target.timeout,
            look_for_keys=False,
            allow_agent=False,
        )
        return ssh, ssh.open_sftp()
    except paramiko.BadHostKeyException:
        ssh.close()
        raise ConfigurationError(
            "host_key", f"{target.host}:{target.port} presented a different host key"
        ) from None
    except paramiko.AuthenticationException as exc:
        ssh.close()
        if "timeout" in str(exc).lower():
            # paramiko reports a peer that stalls during login as an authentication failure:
            # that is the network, not the key, and a retry may well succeed.
            raise RetryableDeliveryError(
                f"SFTP {target.host}:{target.port} stalled during login"
            ) from None
        raise ConfigurationError(
            "key_path", f"{target.username}@{target.host}:{target.port} refused the key"
        ) from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        ssh.close()
        raise RetryableDeliveryError(
            f"SFTP {target.host}:{target.port} unreachable ({type(exc).__name__})"
        ) from None
