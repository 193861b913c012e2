"""Batch delivery to chrooted SFTP drops (OpenSSH in a mount namespace, one jail per institution):
complete batches with a signed manifest written last, idempotent re-delivery, resets and hangs
mid-upload with no partial file ever under a final name, clear configuration errors, isolation;
and, against a fake that OpenSSH cannot imitate, a server keeping fewer bytes than it confirmed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sshd_chroot import ChrootSshd, require_root, start_chroot_sshd
from tcp_proxy import TcpProxy

from connectors.sftp_delivery import ManifestInfo, OutgoingFile, SftpDelivery, _classify, _RawSftp
from connectors.ssh import SftpTarget, open_sftp
from overstap.crypto.trust import TrustStore
from overstap.domain.errors import ConfigurationError, RetryableDeliveryError
from overstap.domain.identifiers import Oin
from overstap.pki import PartySpec, PkiLayout, init_dev_pki
from overstap.xml.dsig import DSIG_NS, Signer, Verifier
from overstap.xml.safe import parse_untrusted
from overstap.xml.schemas import validate

pytestmark = pytest.mark.openssh

PASS = b"test-passphrase-long-enough"
HUB_OIN = "00000099000000000001"
MBO_OIN = "00000007001234567000"
M = "{urn:overstap:manifest:1}"
OTHER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbBkEwLuC3FGoY1KwoYrwUuK5zdbs2cpzz8QLEBYJ4a"


class FaultProxy(TcpProxy):
    """TcpProxy plus faults after a number of client bytes: a reset, or a peer that hangs."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.cut_at: int | None = None
        self.stall_at: int | None = None
        self._release = threading.Event()

    def cut_after(self, n: int) -> None:
        """Reset (RST) each new connection once the client has sent more than `n` bytes."""
        self.cut_at = n

    def stall_after(self, n: int) -> None:
        """Forward nothing more, keeping the connection open, after `n` client bytes."""
        self.stall_at = n

    def clear(self) -> None:
        self.reset()
        self.cut_at = self.stall_at = None
        self._release.set()
        self._release = threading.Event()

    def _pump(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        if slow:  # the peer's direction: the base class's delay applies
            super()._pump(src, dst, slow)
            return
        sent = 0
        release = self._release
        try:
            while data := src.recv(65536):
                sent += len(data)
                if self.cut_at is not None and sent > self.cut_at:
                    for s in (src, dst):
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01" + b"\x00" * 7)
                        s.close()  # RST both ways: the connection is gone mid-transfer
                    return
                if self.stall_at is not None and sent > self.stall_at:
                    release.wait()
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture(scope="module")
def server(sshd_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChrootSshd]:
    require_root()
    srv = start_chroot_sshd(
        sshd_bin, tmp_path_factory.mktemp("chroot"), ["roc-a", "roc-b", "roc-ro"], ["roc-ro"]
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    hub = PartySpec(slug="hub", name="Overstap hub", oin=Oin(HUB_OIN), kind="hub")
    return init_dev_pki(tmp_path_factory.mktemp("pki"), [hub], PASS)


@pytest.fixture(scope="module")
def signer(pki: PkiLayout) -> Signer:
    return Signer.from_files(
        pki.key_path("hub", "sign"), pki.cert_path("hub", "sign"), PASS, [pki.issuing_cert_path]
    )


@pytest.fixture(scope="module")
def proxy(server: ChrootSshd) -> Iterator[FaultProxy]:
    with FaultProxy(server.institutions["roc-a"].port) as p:
        yield p


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty drops and a well-behaved proxy for every test."""
    yield
    if "server" in request.fixturenames:
        srv: ChrootSshd = request.getfixturevalue("server")
        for inst in srv.institutions.values():
            for p in inst.inbox.iterdir():
                p.unlink()
    if "proxy" in request.fixturenames:
        request.getfixturevalue("proxy").clear()


def _batch(n: int, size: int = 9_000, tag: str = "m") -> list[OutgoingFile]:
    return [OutgoingFile(f"{tag}{i:04d}.p7m", os.urandom(size + i)) for i in range(n)]


def _info(signer: Signer, batch_id: str = "BATCH-20260402-0001") -> ManifestInfo:
    return ManifestInfo(batch_id, HUB_OIN, MBO_OIN, signer)


class Watcher:
    """Looks at the drop folder as a receiver would, as often as it can, while a test uploads.

    Every file under a final name must hold exactly its bytes, and once a manifest is there
    every file it lists must be there whole.
    """

    def __init__(self, inbox: Path, files: Sequence[OutgoingFile]) -> None:
        self.inbox = inbox
        self.expected = {f.name: f.data for f in files}
        self.problems: list[str] = []
        self.looks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.looks += 1
            names = set(os.listdir(self.inbox))
            manifest_seen = any(n.startswith("manifest-") and n.endswith(".xml") for n in names)
            for name in names:
                if name.endswith(".part") or name not in self.expected:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if (self.inbox / name).read_bytes() != self.expected[name]:
                        self.problems.append(f"{name} visible but incomplete")
            if manifest_seen and not set(self.expected) <= names:
                self.problems.append("manifest visible before every file")


def _manifest_entries(data: bytes, pki: PkiLayout) -> tuple[Any, list[tuple[str, int, str]]]:
    """Verify the hub's signature, validate against manifest.xsd, return the file entries."""
    root = parse_untrusted(data, require_utf8=True)
    Verifier(TrustStore.from_pem_file(pki.trust_bundle_path)).verify(
        root, expected_oin=Oin(HUB_OIN), source="manifest"
    )
    # manifest.xsd has no slot for ds:Signature (a closed model): validate what was signed.
    root.remove(root.find(f"{{{DSIG_NS}}}Signature"))
    assert validate(root, "manifest") == []
    entries = [
        (b.findtext(M + "naam"), int(b.findtext(M + "grootte")), b.findtext(M + "sha256"))
        for b in root.iter(M + "bestand")
    ]
    return root, entries


def _expected_entries(files: Sequence[OutgoingFile]) -> list[tuple[str, int, str]]:
    return [(f.name, len(f.data), hashlib.sha256(f.data).hexdigest()) for f in files]


def test_a_batch_arrives_complete_with_a_signed_manifest_written_last(
    server: ChrootSshd, signer: Signer, pki: PkiLayout
) -> None:
    inbox = server.institutions["roc-a"].inbox
    files = _batch(40)
    with Watcher(inbox, files) as watcher:
        result = SftpDelivery().deliver(
            server.target("roc-a"), "/in", files, manifest=_info(signer)
        )
    assert watcher.problems == [] and watcher.looks > 1
    assert result.delivered == [f.name for f in files] and result.skipped == []
    assert result.manifest == "manifest-BATCH-20260402-0001.xml"
    assert sorted(os.listdir(inbox)) == sorted([f.name for f in files] + [result.manifest])
    for f in files:
        assert (inbox / f.name).read_bytes() == f.data
    root, entries = _manifest_entries((inbox / result.manifest).read_bytes(), pki)
    assert entries == _expected_entries(files)
    assert [root.findtext(M + t) for t in ("batchid", "afzender", "ontvanger")] == [
        "BATCH-20260402-0001",
        HUB_OIN,
        MBO_OIN,
    ]
    manifest_size = (inbox / result.manifest).stat().st_size
    assert result.bytes == sum(len(f.data) for f in files) + manifest_size
    # Written last: no file of the batch is newer than the manifest.
    newest = max((inbox / f.name).stat().st_mtime_ns for f in files)
    assert (inbox / result.manifest).stat().st_mtime_ns >= newest


def test_xmlsec1_verifies_the_delivered_manifest(
    server: ChrootSshd, signer: Signer, pki: PkiLayout, xmlsec1_bin: str
) -> None:
    result = SftpDelivery().deliver(
        server.target("roc-a"), "/in", _batch(3), manifest=_info(signer)
    )
    manifest = server.institutions["roc-a"].inbox / result.manifest
    ok = subprocess.run(
        [
            xmlsec1_bin,
            "--verify",
            "--enabled-key-data",
            "x509",
            "--trusted-pem",
            str(pki.ca_cert_path),
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr


def test_redelivery_skips_what_is_there_and_replaces_what_is_not_the_same(
    server: ChrootSshd, signer: Signer, pki: PkiLayout
) -> None:
    inbox = server.institutions["roc-a"].inbox
    files = _batch(12)
    delivery = SftpDelivery(channels=3)
    delivery.deliver(server.target("roc-a"), "/in", files, manifest=_info(signer))
    inodes = {f.name: (inbox / f.name).stat().st_ino for f in files}

    again = delivery.deliver(server.target("roc-a"), "/in", files, manifest=_info(signer))
    assert again.delivered == [] and again.skipped == [f.name for f in files]
    assert {f.name: (inbox / f.name).stat().st_ino for f in files} == inodes  # not rewritten

    # After a crash: one file gone, one with other bytes of the same size, a stale .part.
    (inbox / files[0].name).unlink()
    (inbox / files[1].name).write_bytes(bytes(len(files[1].data)))
    (inbox / f"{files[2].name}.part").write_bytes(b"torn")
    (inbox / files[2].name).unlink()
    third = delivery.deliver(server.target("roc-a"), "/in", files, manifest=_info(signer))
    assert third.delivered == [f.name for f in files[:3]]
    assert third.skipped == [f.name for f in files[3:]]
    assert sorted(os.listdir(inbox)) == sorted([f.name for f in files] + [third.manifest])
    for f in files:
        assert (inbox / f.name).read_bytes() == f.data
    _, entries = _manifest_entries((inbox / third.manifest).read_bytes(), pki)
    assert entries == _expected_entries(files)  # the batch, not just what was sent this time


def test_a_reset_mid_upload_is_retryable_and_the_retry_completes_with_nothing_torn(
    server: ChrootSshd, proxy: FaultProxy, signer: Signer, pki: PkiLayout
) -> None:
    inbox = server.institutions["roc-a"].inbox
    # Files of several WRITEs, so a cut can fall inside a file; the batch is 8.4 MB, at most
    # 4 MB is in flight on 4 channels: the cut comes after the first renames, before the last.
    files = _batch(120, size=70_000)
    target = server.target("roc-a", port=proxy.port)
    proxy.cut_after(5_000_000)
    with Watcher(inbox, files) as watcher:
        with pytest.raises(RetryableDeliveryError):
            SftpDelivery().deliver(target, "/in", files, manifest=_info(signer))
        names = set(os.listdir(inbox))
        done = {f.name for f in files} & names
        assert 0 < len(done) < len(files)  # really cut mid-batch
        assert not any(n.startswith("manifest-") for n in names)

        proxy.clear()
        result = SftpDelivery().deliver(target, "/in", files, manifest=_info(signer))
    assert watcher.problems == []
    # A rename already sent may land after the reset was seen: skipped covers at least `done`.
    assert done <= set(result.skipped)
    assert sorted(result.skipped + result.delivered) == sorted(f.name for f in files)
    assert sorted(os.listdir(inbox)) == sorted([f.name for f in files] + [result.manifest])
    _, entries = _manifest_entries((inbox / result.manifest).read_bytes(), pki)
    assert entries == _expected_entries(files)


def test_a_reset_during_the_handshake_is_retryable(
    server: ChrootSshd, proxy: FaultProxy, signer: Signer
) -> None:
    proxy.fail_next()
    with pytest.raises(RetryableDeliveryError, match="unreachable"):
        SftpDelivery().deliver(
            server.target("roc-a", port=proxy.port), "/in", _batch(2), manifest=_info(signer)
        )


@pytest.mark.parametrize("fault", ["slow from the start", "hangs mid-upload"])
def test_a_slow_or_hung_peer_is_retryable_within_the_timeout(
    server: ChrootSshd, proxy: FaultProxy, signer: Signer, fault: str
) -> None:
    if fault == "slow from the start":
        proxy.slow_down(2.0)
    else:
        proxy.stall_after(100_000)
    target = server.target("roc-a", port=proxy.port, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RetryableDeliveryError):
        SftpDelivery().deliver(target, "/in", _batch(30), manifest=_info(signer))
    assert time.monotonic() - started < 2.0  # a few timeouts at most, never the peer's pace
    inbox = server.institutions["roc-a"].inbox
    assert not any(n.startswith("manifest-") for n in os.listdir(inbox))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"host_key": OTHER_HOST_KEY}, "different host key"),
        ("key of roc-b", "refused the key"),
    ],
)
def test_wrong_host_key_or_refused_key_is_a_configuration_error(
    server: ChrootSshd, signer: Signer, change: Any, match: str
) -> None:
    if change == "key of roc-b":
        change = {"key_path": server.institutions["roc-b"].client_key_path}
    with pytest.raises(ConfigurationError, match=match):
        SftpDelivery().deliver(
            server.target("roc-a", **change), "/in", _batch(1), manifest=_info(signer)
        )


def test_missing_folder_or_no_write_permission_is_a_configuration_error(
    server: ChrootSshd, signer: Signer
) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SftpDelivery().deliver(server.target("roc-a"), "/out", _batch(1), manifest=_info(signer))
    with pytest.raises(ConfigurationError, match="permission denied"):
        SftpDelivery().deliver(server.target("roc-ro"), "/in", _batch(3), manifest=_info(signer))
    assert os.listdir(server.institutions["roc-ro"].inbox) == []


def test_an_institution_sees_and_reaches_only_its_own_jail(
    server: ChrootSshd, signer: Signer
) -> None:
    a, b = server.institutions["roc-a"], server.institutions["roc-b"]
    (b.inbox / "secret.p7m").write_bytes(b"for roc-b only")
    ssh, sftp = open_sftp(server.target("roc-a"))
    try:
        assert sftp.listdir("/") == ["in"]
        assert sftp.listdir("/../../..") == ["in"]  # the jail's root is its own parent
        for path in (
            "/../roc-b/in/secret.p7m",
            "../roc-b/in/secret.p7m",
            f"{server.mountpoint}/roc-b/in/secret.p7m",
            f"{b.inbox}/secret.p7m",
        ):
            with pytest.raises(FileNotFoundError):
                sftp.stat(path)
        # A symlink is resolved inside the jail too: it cannot point A at B's files.
        sftp.symlink(f"{server.mountpoint}/roc-b/in/secret.p7m", "/in/link")
        with pytest.raises(FileNotFoundError):
            sftp.open("/in/link").read()
        with pytest.raises(FileNotFoundError):
            sftp.open("/../roc-b/in/planted.p7m", "wb").write(b"x")
    finally:
        sftp.close()
        ssh.close()
    with pytest.raises(ConfigurationError, match="does not exist"):
        SftpDelivery().deliver(
            server.target("roc-a"), "../roc-b/in", _batch(1), manifest=_info(signer)
        )
    assert os.listdir(b.inbox) == ["secret.p7m"]
    assert not any(n.startswith("m0") for n in os.listdir(a.inbox))
    with pytest.raises(ConfigurationError, match="refused the key"):  # A's key on B's port
        open_sftp(server.target("roc-b", key_path=a.client_key_path))


@pytest.mark.parametrize("name", ["../x.p7m", "in/x.p7m", ".hidden", "x.p7m.part", "", "a b"])
def test_names_that_are_not_plain_file_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="file name"):
        OutgoingFile(name, b"x")


def test_a_manifest_the_schema_refuses_is_never_sent(signer: Signer) -> None:
    nowhere = SftpTarget("127.0.0.1", 9, "x", Path("/nonexistent"), OTHER_HOST_KEY, 0.1)
    info = ManifestInfo("B1", HUB_OIN, "12345", signer)  # not an OIN
    with pytest.raises(ValueError, match="manifest"):
        SftpDelivery().deliver(nowhere, "/in", _batch(1), manifest=info)
    with pytest.raises(ValueError, match="manifest name"):
        SftpDelivery().deliver(nowhere, "/in", _batch(1), manifest=_info(signer, "urn:uuid:1"))


def _sftp_string(data: bytes, at: int) -> tuple[bytes, int]:
    (n,) = struct.unpack_from(">I", data, at)
    return data[at + 4 : at + 4 + n], at + 4 + n


class LyingSftpServer:
    """Just enough of an SFTP server for uploads, confirming every WRITE but keeping one byte
    less than it was sent. Only the size check before the rename stands between such a server
    and a short file under a final name; OpenSSH cannot be made to do this. It stands in for a
    paramiko Transport and its channel (the few methods an upload channel uses)."""

    def __init__(self) -> None:
        self.sizes: dict[bytes, int] = {}
        self.renamed: list[bytes] = []
        self._in = b""
        self._out = b""

    def open_session(self, timeout: float) -> LyingSftpServer:
        return self

    def settimeout(self, timeout: float) -> None: ...

    def invoke_subsystem(self, name: str) -> None: ...

    def close(self) -> None: ...

    def recv_ready(self) -> bool:
        return bool(self._out)

    def recv(self, n: int) -> bytes:
        data, self._out = self._out[:n], self._out[n:]
        return data

    def sendall(self, data: bytes) -> None:
        self._in += data
        while len(self._in) >= 4 and len(self._in) >= 4 + struct.unpack_from(">I", self._in)[0]:
            (size,) = struct.unpack_from(">I", self._in)
            packet, self._in = self._in[4 : 4 + size], self._in[4 + size :]
            self._answer(packet[0], packet[1:])

    def _reply(self, kind: int, body: bytes) -> None:
        self._out += struct.pack(">IB", len(body) + 1, kind) + body

    def _answer(self, kind: int, body: bytes) -> None:
        ok = struct.pack(">III", 0, 0, 0)  # SSH_FX_OK, empty message and language
        if kind == 1:  # INIT -> VERSION 3 with posix-rename
            name = b"posix-rename@openssh.com"
            self._reply(2, struct.pack(">II", 3, len(name)) + name + struct.pack(">I", 1) + b"1")
            return
        request_id = body[:4]
        first, at = _sftp_string(body, 4)
        if kind == 3:  # OPEN: the path serves as the handle
            self.sizes[first] = 0
            self._reply(102, request_id + struct.pack(">I", len(first)) + first)
        elif kind == 6:  # WRITE handle, offset, data: confirmed, one byte short
            data, _ = _sftp_string(body, at + 8)
            self.sizes[first] += len(data) - 1
            self._reply(101, request_id + ok)
        elif kind == 8:  # FSTAT -> the size kept
            self._reply(105, request_id + struct.pack(">IQ", 1, self.sizes[first]))
        elif kind == 4:  # CLOSE
            self._reply(101, request_id + ok)
        else:  # EXTENDED posix-rename old new
            _, at = _sftp_string(body, at)
            self.renamed.append(_sftp_string(body, at)[0])
            self._reply(101, request_id + ok)


def test_a_size_the_server_did_not_keep_is_never_renamed_into_place() -> None:
    server = LyingSftpServer()
    channel = _RawSftp(server, "/in", 1.0)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="arrived with 8999 of 9000 bytes") as caught:
        channel.upload(iter([("a.p7m", os.urandom(9_000))]), threading.Event())
    assert server.renamed == []
    assert server.sizes == {b"/in/a.p7m.part": 8_999}
    assert isinstance(_classify(caught.value, "/in", "h:22"), RetryableDeliveryError)
