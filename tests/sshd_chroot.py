"""A chrooted, SFTP-only OpenSSH sshd with one jailed account per institution, for delivery tests.

Why the recipe looks like this:
- sshd chroots only into a path whose every component is root-owned and not group- or
  world-writable, and /tmp (where pytest's tmp_path lives) is world-writable. The jail is
  therefore built under the test's tmp dir and bind-mounted onto a root-owned path outside /tmp,
  `/srv/overstap-test-<pid>-<n>`.
- The bind mount exists only in a private mount namespace, so nothing leaks into the host's mount
  table and nothing needs unmounting: sshd is started as
      unshare --mount --propagation private -- sh -c 'mount --bind JAIL MNT && exec sshd -D ...'
  `unshare` (no --fork) and `sh`'s `exec` keep one pid, so stopping that pid stops sshd, and the
  namespace (with its mount) goes away with its last process. Only the empty mount point
  directory is left on the host; `stop()` removes it. Tests read and write the jails through
  the tmp paths, which are the same directories.
- Tests cannot create OS users, so every institution logs in as the current user (root) and is
  told apart by the port it connects to: one sshd listens on one port per institution and
  `Match LocalPort <port>` gives that port its own AuthorizedKeysFile (the institution's own
  key), `ChrootDirectory <mnt>/<institution>` and `ForceCommand internal-sftp -d /in` (`-R`
  for a read-only account, to provoke "permission denied" for root). Outside
  the Match blocks `AuthorizedKeysFile none` admits nobody, so a key only works on its own port.
- Each jail is root-owned 0755 with a writable `in/` folder. internal-sftp needs nothing inside
  the jail (no shell, no /dev, no libraries), so the jail holds only the institution's files.

Needs root (chroot, mount namespaces); `require_root()` skips (or fails under
OVERSTAP_REQUIRE_SERVICES=1) otherwise.
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from conftest import missing_service

from connectors.reference.sftp_server import (
    HARDENED_OPTIONS,
    free_port,
    host_key_line,
    keygen,
    wait_listening,
)
from connectors.ssh import SftpTarget

_mounts = itertools.count()


def require_root() -> None:
    """Skip (or fail in CI) where a chrooted sshd cannot run."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        missing_service("root with unshare(1) (a chrooted sshd needs a mount namespace)")


@dataclass(frozen=True)
class Institution:
    """One jailed account: its port, its own client key, and its jail as the test sees it."""

    name: str
    port: int
    client_key_path: Path
    jail: Path

    @property
    def inbox(self) -> Path:
        """The drop folder; `/in` (the SFTP start directory) inside the jail."""
        return self.jail / "in"


@dataclass
class ChrootSshd:
    host_key_line: str
    institutions: dict[str, Institution]
    mountpoint: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def target(self, name: str, **changes: object) -> SftpTarget:
        """How the hub reaches institution `name` (pinned host key, the institution's key)."""
        inst = self.institutions[name]
        base = SftpTarget(
            host="127.0.0.1",
            port=inst.port,
            username=getpass.getuser(),
            key_path=inst.client_key_path,
            host_key=self.host_key_line,
            timeout=5.0,
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        with contextlib.suppress(OSError):
            self.mountpoint.rmdir()  # unmounted with the namespace; empty on the host

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_chroot_sshd(
    sshd_bin: str, workdir: Path, names: Sequence[str], read_only: Sequence[str] = ()
) -> ChrootSshd:
    """Start one sshd serving a jailed SFTP account per name in `names` (plain names).

    Accounts in `read_only` get `internal-sftp -R`: every write is refused with "permission
    denied", which root (the login user) would otherwise never see.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    jail_root = workdir / "jail"
    jail_root.mkdir(mode=0o755)
    jail_root.chmod(0o755)  # umask aside: the chroot path must not be group/world-writable
    mountpoint = Path(f"/srv/overstap-test-{os.getpid()}-{next(_mounts)}")
    mountpoint.mkdir(mode=0o755, exist_ok=True)  # left empty by a killed run: reusable
    host_key = workdir / "host_ed25519"
    keygen(host_key)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    institutions: dict[str, Institution] = {}
    blocks: list[str] = []
    for name in names:
        jail = jail_root / name
        (jail / "in").mkdir(parents=True)
        jail.chmod(0o755)
        key = workdir / f"client_{name}"
        keygen(key)
        authorized = workdir / f"authorized_keys_{name}"
        authorized.write_text(key.with_suffix(".pub").read_text())
        authorized.chmod(0o600)
        inst = Institution(name, free_port(), key, jail)
        institutions[name] = inst
        blocks += [
            f"Match LocalPort {inst.port}",
            f"    AuthorizedKeysFile {authorized}",
            f"    ChrootDirectory {mountpoint / name}",
            f"    ForceCommand internal-sftp -d /in{' -R' if name in read_only else ''}",
        ]
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                *HARDENED_OPTIONS,
                *(f"Port {i.port}" for i in institutions.values()),
                f"HostKey {host_key}",
                "AuthorizedKeysFile none",
                f"PidFile {workdir / 'sshd.pid'}",
                "AllowAgentForwarding no",
                "PermitTunnel no",
                "MaxSessions 16",
                "Subsystem sftp internal-sftp",
                "ForceCommand internal-sftp",
                *blocks,
                "",
            ]
        )
    )
    log = workdir / "sshd.log"
    process = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            'mount --bind "$1" "$2" && exec "$3" -D -e -f "$4"',
            "sh",
            str(jail_root),
            str(mountpoint),
            sshd_bin,
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    server = ChrootSshd(
        host_key_line=host_key_line(host_key),
        institutions=institutions,
        mountpoint=mountpoint,
        process=process,
        log_path=log,
    )
    for inst in institutions.values():
        try:
            wait_listening(process, inst.port, log)
        except RuntimeError:
            server.stop()
            raise
    return server
