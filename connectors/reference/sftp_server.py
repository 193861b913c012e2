"""A real OpenSSH sshd as the reference SFTP peer (tests, the demo): SFTP only, key login, a
free port, stopped by its owner.

Runs as the test's own user with its own host key, authorized key and config in a temporary
directory, so it needs no system configuration (as root it needs /run/sshd, created here).
Chrooted accounts (the delivery issue) need a mount namespace; this server serves one account
whose SFTP root is `root` by way of `ForceCommand internal-sftp -d`.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from connectors.ssh import SftpTarget


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SshdServer:
    """One sshd process; `host_key_line` is what a client pins ("ssh-ed25519 AAAA...")."""

    port: int
    user: str
    client_key_path: Path
    host_key_line: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def find_sshd() -> str | None:
    """The OpenSSH server binary (Debian: openssh-server), or None."""
    for candidate in (shutil.which("sshd"), "/usr/sbin/sshd", "/usr/local/sbin/sshd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


# What every test sshd runs with: keys only, no PAM, no forwarding, SFTP and nothing else.
HARDENED_OPTIONS = (
    "ListenAddress 127.0.0.1",
    "StrictModes no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    "PermitRootLogin prohibit-password",
    "UsePAM no",
    "AllowTcpForwarding no",
    "X11Forwarding no",
    "LogLevel VERBOSE",
)


def keygen(path: Path) -> None:
    """A fresh ed25519 key pair at `path` and `path.pub`, without a passphrase."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def host_key_line(host_key: Path) -> str:
    """What a client pins: "ssh-ed25519 AAAA..." from the public key file."""
    return " ".join(host_key.with_suffix(".pub").read_text().split()[:2])


def wait_listening(
    process: subprocess.Popen[bytes], port: int, log: Path, seconds: float = 10
) -> None:
    """Until `port` greets with an SSH banner; RuntimeError (with sshd's log) if sshd exits
    or never listens. The caller stops the process on error."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sshd did not start listening")


def start_sshd(sshd_bin: str, workdir: Path, root: Path) -> SshdServer:
    """Start sshd serving SFTP of `root` to the current user with a fresh client key."""
    workdir.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    host_key = workdir / "host_ed25519"
    client_key = workdir / "client_ed25519"
    for path in (host_key, client_key):
        keygen(path)
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                *HARDENED_OPTIONS,
                f"Port {port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"Subsystem sftp internal-sftp -d {root}",
                f"ForceCommand internal-sftp -d {root}",
                "",
            ]
        )
    )
    log = workdir / "sshd.log"
    process = subprocess.Popen(
        [sshd_bin, "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        wait_listening(process, port, log)
    except RuntimeError:
        process.kill()
        raise
    return SshdServer(
        port=port,
        user=getpass.getuser(),
        client_key_path=client_key,
        host_key_line=host_key_line(host_key),
        root=root,
        process=process,
        log_path=log,
    )


def target(server: SshdServer, **changes: object) -> SftpTarget:
    """How the hub reaches this server (pinned host key, the client key)."""
    base = SftpTarget(
        host="127.0.0.1",
        port=server.port,
        username=server.user,
        key_path=server.client_key_path,
        host_key=server.host_key_line,
        timeout=5.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def route_settings(server: SshdServer, oin: str, folder: str = "in") -> dict[str, str]:
    """The same reach as `target`, as an administrator stores it in a delivery route."""
    return {
        "host": "127.0.0.1",
        "port": str(server.port),
        "username": server.user,
        "key_path": str(server.client_key_path),
        "host_key": server.host_key_line,
        "folder": folder,
        "oin": oin,
        "timeout": "10",
    }
