"""The reference OpenSSH peer for tests (connectors.reference.sftp_server), under its old name."""

from connectors.reference.sftp_server import (
    SshdServer,
    free_port,
    route_settings,
    start_sshd,
    target,
)

__all__ = ["SshdServer", "free_port", "route_settings", "start_sshd", "target"]
