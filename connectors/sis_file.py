"""SIS file exports: from a local folder, or from an SFTP drop the school's SIS writes to.

Settings (`SisSchool.settings`):
- `folder`: where the exports are; `{location}` is replaced by the school location (one drop
  folder per school); for SFTP a path on the server.
- `pattern`: which files are exports (glob, default `leerlingen.*`); files still being written
  (`*.part`, `*.tmp`, names starting with `.`) are never read.
- SFTP only: `host`, `port` (22), `username`, `key_path`, `host_key` (`ssh-ed25519 AAAA...`,
  pinned), `timeout` (30 s).

Every matching file is one `ExportDocument`; its `version` is `sha256:<hex>` of the bytes, so
the pull service can tell an unchanged export from a new one. Files are read whole: a school's
export is tens of MB at most, and the parser needs its exact bytes for quarantine.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import posixpath
import stat
from collections.abc import Iterator
from pathlib import Path

import paramiko

from connectors.ssh import SftpTarget, open_sftp
from overstap.domain.errors import ConfigurationError, RetryableDeliveryError
from overstap.ports import ExportDocument, SisSchool

DEFAULT_PATTERN = "leerlingen.*"
_IN_PROGRESS = ("*.part", "*.tmp", ".*")


def _is_export(name: str, pattern: str) -> bool:
    return fnmatch.fnmatch(name, pattern) and not any(
        fnmatch.fnmatch(name, p) for p in _IN_PROGRESS
    )


def _document(name: str, data: bytes) -> ExportDocument:
    return ExportDocument(
        name=name,
        open=lambda: io.BytesIO(data),
        version=f"sha256:{hashlib.sha256(data).hexdigest()}",
    )


def _setting(school: SisSchool, key: str, default: str | None = None) -> str:
    value = school.settings.get(key, default)
    if value is None or not str(value).strip():
        raise ConfigurationError(f"sis.{school.location}.{key}", "is required")
    return str(value)


class FileSisConnector:
    """Exports in a local (or mounted) folder."""

    def fetch(self, school: SisSchool, since: str | None) -> Iterator[ExportDocument]:
        folder = Path(_setting(school, "folder").replace("{location}", school.location))
        pattern = _setting(school, "pattern", DEFAULT_PATTERN)
        if not folder.is_dir():
            raise ConfigurationError(f"sis.{school.location}.folder", f"{folder} is not a folder")
        for path in sorted(folder.iterdir()):
            if path.is_file() and _is_export(path.name, pattern):
                yield _document(path.name, path.read_bytes())


class SftpSisConnector:
    """Exports in an SFTP drop; one connection per fetch, host key pinned."""

    def fetch(self, school: SisSchool, since: str | None) -> Iterator[ExportDocument]:
        target = SftpTarget(
            host=_setting(school, "host"),
            port=int(_setting(school, "port", "22")),
            username=_setting(school, "username"),
            key_path=Path(_setting(school, "key_path")),
            host_key=_setting(school, "host_key"),
            timeout=float(_setting(school, "timeout", "30")),
        )
        folder = _setting(school, "folder").replace("{location}", school.location)
        pattern = _setting(school, "pattern", DEFAULT_PATTERN)
        ssh, sftp = open_sftp(target)
        try:
            try:
                entries = sftp.listdir_attr(folder)
            except FileNotFoundError:
                raise ConfigurationError(
                    f"sis.{school.location}.folder", f"{folder} does not exist on the server"
                ) from None
            names = sorted(
                e.filename
                for e in entries
                if stat.S_ISREG(e.st_mode or 0) and _is_export(e.filename, pattern)
            )
            for name in names:
                with sftp.open(posixpath.join(folder, name), "rb") as remote:
                    remote.prefetch()  # pipelined reads: one round trip per window, not per block
                    data = remote.read()
                yield _document(name, data)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise RetryableDeliveryError(
                f"SFTP read from {target.host}:{target.port} failed ({type(exc).__name__})"
            ) from None
        finally:
            sftp.close()
            ssh.close()
