"""File exports from a local folder and from a real OpenSSH SFTP drop: exact bytes, only
finished files, pinned host key, clear errors for what a person must fix."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import SshdServer, start_sshd, target

from connectors.sis_file import FileSisConnector, SftpSisConnector
from connectors.ssh import open_sftp
from overstap.domain.errors import ConfigurationError, RetryableDeliveryError
from overstap.ports import SisSchool

EXPORT = "Stamnr;Achternaam\r\n1;Visser\r\n2;Bakker\r\n".encode("utf-8-sig")


@pytest.fixture(scope="module")
def sshd(sshd_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    work = tmp_path_factory.mktemp("sshd")
    server = start_sshd(sshd_bin, work / "etc", work / "drop")
    yield server
    server.stop()


def _fill(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leerlingen.csv").write_bytes(EXPORT)
    (folder / "leerlingen.csv.part").write_bytes(b"half")  # still being uploaded
    (folder / ".leerlingen.tmp").write_bytes(b"hidden")
    (folder / "rooster.csv").write_bytes(b"not an export")


def _school(**settings: str) -> SisSchool:
    return SisSchool("12AB00", "magister", "file", settings)


def test_local_folder_gives_finished_exports_with_their_exact_bytes(tmp_path: Path) -> None:
    _fill(tmp_path / "12AB00")
    docs = list(FileSisConnector().fetch(_school(folder=str(tmp_path / "{location}")), None))
    assert [d.name for d in docs] == ["leerlingen.csv"]
    assert docs[0].open().read() == EXPORT and docs[0].open().read() == EXPORT  # re-readable
    assert docs[0].version == f"sha256:{hashlib.sha256(EXPORT).hexdigest()}"


def test_local_folder_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is not a folder"):
        list(FileSisConnector().fetch(_school(folder=str(tmp_path / "nope")), None))


def _sftp_school(server: SshdServer, **changes: str) -> SisSchool:
    t = target(server)
    settings = {
        "host": t.host,
        "port": str(t.port),
        "username": t.username,
        "key_path": str(t.key_path),
        "host_key": t.host_key,
        "timeout": "5",
        "folder": "drop/{location}",
    }
    return SisSchool("12AB00", "magister", "sftp", {**settings, **changes})


def test_sftp_drop_gives_the_same_documents(sshd: SshdServer) -> None:
    _fill(sshd.root / "drop" / "12AB00")
    docs = list(SftpSisConnector().fetch(_sftp_school(sshd, folder="drop/{location}"), None))
    local = list(
        FileSisConnector().fetch(_school(folder=str(sshd.root / "drop" / "{location}")), None)
    )
    assert [(d.name, d.version) for d in docs] == [(d.name, d.version) for d in local]
    assert docs[0].open().read() == EXPORT


def test_sftp_refuses_a_server_with_another_host_key(sshd: SshdServer, tmp_path: Path) -> None:
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbBkEwLuC3FGoY1KwoYrwUuK5zdbs2cpzz8QLEBYJ4a"
    with pytest.raises(ConfigurationError, match="different host key"):
        list(SftpSisConnector().fetch(_sftp_school(sshd, host_key=other), None))


def test_sftp_missing_folder_and_unreachable_server(sshd: SshdServer) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        list(SftpSisConnector().fetch(_sftp_school(sshd, folder="drop/none"), None))
    from sshd import free_port

    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        list(SftpSisConnector().fetch(_sftp_school(sshd, port=str(free_port())), None))


def test_sftp_refused_key_is_a_configuration_error(sshd: SshdServer, tmp_path: Path) -> None:
    import subprocess

    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(ConfigurationError, match="refused the key"):
        open_sftp(target(sshd, key_path=stranger))
