"""An institution's SFTP outbox folder as the hub's `StatusInbox` (overstap.services.status_files).

Route settings are the delivery route's (`host`, `port`, `username`, `key_path`, `host_key`,
`timeout`), plus `outbox_folder` (default "out": where the institution leaves status files)
and `archive_folder` (default "out/archive": where the hub moves them once taken in), and
`max_file_bytes` (default 20 MiB: a larger file is refused unread, `STATUS-FILE-TOO-LARGE`).
`{recipient}` in either folder is replaced by the BRIN, as for delivery folders.

Only complete files are taken: `*.xml` and `*.p7m`; `.part` files (still being written, by
the convention our own deliveries follow) and dot files are left alone.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import paramiko

from connectors.ssh import SftpTarget, open_sftp
from overstap.domain.errors import ConfigurationError, RetryableDeliveryError
from overstap.ports import Route
from overstap.services.status_files import InboxFile

_SUFFIXES = (".xml", ".p7m")
# Past this many taken names, something is wrong with the archive folder; refuse to loop on.
_MAX_SUFFIX = 1000


# The hardened XML parser's own limit: nothing larger could be taken in anyway.
MAX_FILE_BYTES = 20 * 1024 * 1024


def _setting(route: Route, key: str, default: str | None = None) -> str:
    value = route.settings.get(key, default)
    if value is None or not str(value).strip():
        raise ConfigurationError(f"status intake route {route.recipient}: {key}", "is required")
    return str(value)


def _target(route: Route) -> SftpTarget:
    try:
        port = int(_setting(route, "port", "22"))
        timeout = float(_setting(route, "timeout", "30"))
    except ValueError:
        raise ConfigurationError(
            f"status intake route {route.recipient}: port/timeout", "must be numbers"
        ) from None
    return SftpTarget(
        host=_setting(route, "host"),
        port=port,
        username=_setting(route, "username"),
        key_path=Path(_setting(route, "key_path")),
        host_key=_setting(route, "host_key"),
        timeout=timeout,
    )


def _folder(route: Route, key: str, default: str) -> str:
    return _setting(route, key, default).replace("{recipient}", route.recipient)


def wanted(name: str) -> bool:
    """A complete status file: `.xml`/`.p7m`, not a dot file, not a `.part` in progress."""
    return not name.startswith(".") and name.endswith(_SUFFIXES)


class SftpInbox:
    """One SSH connection per call; files are read whole up to `max_file_bytes` (default
    MAX_FILE_BYTES): a status file is small, and a larger one is refused unread rather than
    held in memory."""

    @contextmanager
    def _session(self, route: Route) -> Iterator[paramiko.SFTPClient]:
        ssh, sftp = open_sftp(_target(route))
        try:
            yield sftp
        except (OSError, EOFError, paramiko.SSHException) as exc:
            # After login, any failure is the connection or the server: retry the whole poll.
            # A missing folder or a permission problem is configuration, not the network
            # (both are OSErrors, so they are told apart first).
            if isinstance(exc, FileNotFoundError):
                raise ConfigurationError(
                    f"status intake route {route.recipient}", "a configured folder is missing"
                ) from None
            if isinstance(exc, PermissionError):
                raise ConfigurationError(
                    f"status intake route {route.recipient}", "no permission on a folder"
                ) from None
            raise RetryableDeliveryError(
                f"SFTP intake {route.recipient}: {type(exc).__name__}"
            ) from None
        finally:
            ssh.close()

    def pending(self, route: Route) -> list[InboxFile]:
        folder = _folder(route, "outbox_folder", "out")
        with self._session(route) as sftp:
            entries = sftp.listdir_attr(folder)
            names = sorted(
                e.filename
                for e in entries
                if wanted(e.filename) and e.st_mode is not None and stat.S_ISREG(e.st_mode)
            )
            sizes = {e.filename: e.st_size or 0 for e in entries}
            limit = int(_setting(route, "max_file_bytes", str(MAX_FILE_BYTES)))
            files: list[InboxFile] = []
            for name in names:
                if sizes[name] > limit:
                    files.append(InboxFile(name, b"", too_large=sizes[name]))
                    continue
                with sftp.open(str(PurePosixPath(folder) / name), "rb") as fh:
                    fh.prefetch()
                    data = fh.read(limit + 1)  # bounded even if the file grew since listing
                files.append(
                    InboxFile(name, b"", too_large=len(data))
                    if len(data) > limit
                    else InboxFile(name, data)
                )
            return files

    def archive(self, route: Route, names: Sequence[str], *, suffix: str = "") -> None:
        if not names:
            return
        source = PurePosixPath(_folder(route, "outbox_folder", "out"))
        target = PurePosixPath(_folder(route, "archive_folder", "out/archive"))
        with self._session(route) as sftp:
            _ensure_folder(sftp, target)
            taken = set(sftp.listdir(str(target)))
            for name in names:
                final = _free_name(f"{name}{suffix}", taken)
                # posix_rename: atomic on the server, and it never leaves two copies.
                sftp.posix_rename(str(source / name), str(target / final))
                taken.add(final)


def _ensure_folder(sftp: paramiko.SFTPClient, folder: PurePosixPath) -> None:
    """mkdir -p; a folder made meanwhile by someone else is fine."""
    for part in [*reversed(folder.parents), folder]:
        if str(part) in ("", ".", "/"):
            continue
        try:
            sftp.stat(str(part))
        except FileNotFoundError:
            try:
                sftp.mkdir(str(part))
            except OSError:
                sftp.stat(str(part))  # raced: exists now, else the error stands


def _free_name(name: str, taken: set[str]) -> str:
    """`name`, or `name.1`, `name.2`, ... when an earlier file of that name was archived."""
    if name not in taken:
        return name
    for n in range(1, _MAX_SUFFIX):
        candidate = f"{name}.{n}"
        if candidate not in taken:
            return candidate
    raise ConfigurationError("archive_folder", f"holds {_MAX_SUFFIX} files of one name")
