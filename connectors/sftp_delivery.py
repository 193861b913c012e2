"""Deliver one batch of outgoing files to an institution's SFTP drop, with a signed manifest.

Guarantees, in the order a receiver relies on them:
- No partial file under a final name, ever: each file is written as `<name>.part`, its size on
  the server is checked (FSTAT on the open handle, answered after every WRITE), and only then,
  with every WRITE and the CLOSE confirmed, is it `posix_rename`d to `<name>` (a plain SFTP
  rename onto an existing file fails on OpenSSH; posix-rename@openssh.com replaces atomically).
- The manifest comes last: `manifest-<batchid>.xml` (manifest.xsd: name, size and sha256 of
  every file of the batch, signed by the hub, ADR 6) is renamed into place only after every file
  has been, so a receiver that sees the manifest can read every file it lists.
- Re-delivery is idempotent: a file whose final name already holds the same size and the same
  bytes is skipped. Same size is asked of one listing; the bytes are then read back (pipelined,
  like the uploads) and compared whole, which is stronger than comparing sha256 digests and as
  cheap: a size alone would not tell another version under the same message id apart.
  Anything else under that name is replaced. A `.part` left by a failed attempt is simply
  overwritten by the next one (opened with truncation), never read.

Speed: one SSH connection per batch (a connection costs 120-240 ms); on it, the control channel
(paramiko's SFTPClient, for the listing) and `channels` upload channels, one thread each. An
upload channel pipelines whole files, not only the writes of one file (`_RawSftp`): with
paramiko's SFTPClient every OPEN, CLOSE, STAT and RENAME waits for its reply, and even on 8
channels with pipelined writes that delivered 2,000 files of 9 KB at 0.65-0.95x the rate of
OpenSSH's `sftp -b`; pipelined as here it is 1.7-3.4x (bench/delivery.py; the spread is
mostly OpenSSH's own rate on this shared machine, 1,150-2,000 files/s).

Errors: network trouble, a timeout or a torn upload is `RetryableDeliveryError`; a refused key, a
changed host key, a missing folder or a permission refusal is `ConfigurationError` (a person must
act). Invalid input (a name that is not a plain file name, a batch id or OIN the manifest schema
refuses) is a `ValueError`: a bug in the caller, found before anything is sent.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import posixpath
import queue
import re
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paramiko
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from connectors.ssh import SftpTarget, open_sftp
from overstap.domain.errors import ConfigurationError, RetryableDeliveryError
from overstap.xml.dsig import Signer, canonical_bytes
from overstap.xml.schemas import validate

MANIFEST_NS = "urn:overstap:manifest:1"
PART_SUFFIX = ".part"
DEFAULT_CHANNELS = 4
# xsd/overstap-types.xsd TransportBestandsnaam; a plain name can never climb out of the folder.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_M = f"{{{MANIFEST_NS}}}"


def _check_name(name: str, what: str) -> None:
    if not _FILE_NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not a plain file name ([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class OutgoingFile:
    """One file of a batch under its final name (e.g. `<messageid>.p7m`) and its exact bytes."""

    name: str
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name, "file name")
        if self.name.endswith(PART_SUFFIX) or self.name.startswith("manifest-"):
            raise ValueError(f"file name {self.name!r} is reserved for the delivery itself")


@dataclass(frozen=True)
class ManifestInfo:
    """What the manifest says besides the files; `signer` is the hub's signing key (ADR 6)."""

    batch_id: str
    sender_oin: str
    recipient_oin: str
    signer: Signer

    @property
    def file_name(self) -> str:
        return f"manifest-{self.batch_id}.xml"


@dataclass(frozen=True)
class DeliveryResult:
    """`bytes` counts what was written this time (the delivered files and the manifest);
    `seconds` runs from connecting to the manifest in place."""

    delivered: list[str]
    skipped: list[str]
    manifest: str
    bytes: int
    seconds: float


def build_manifest(info: ManifestInfo, files: Sequence[OutgoingFile], created: datetime) -> bytes:
    """The signed manifest document; validated against manifest.xsd before it is signed."""
    root = etree.Element(_M + "manifest", nsmap={None: MANIFEST_NS})
    for tag, text in (
        ("batchid", info.batch_id),
        ("aangemaakt", created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("afzender", info.sender_oin),
        ("ontvanger", info.recipient_oin),
    ):
        etree.SubElement(root, _M + tag).text = text
    for f in files:
        entry = etree.SubElement(root, _M + "bestand")
        etree.SubElement(entry, _M + "naam").text = f.name
        etree.SubElement(entry, _M + "grootte").text = str(len(f.data))
        etree.SubElement(entry, _M + "sha256").text = hashlib.sha256(f.data).hexdigest()
    violations = validate(root, "manifest")
    if violations:
        raise ValueError(f"manifest for batch {info.batch_id!r} is invalid: {violations[0]}")
    info.signer.sign(root)
    return canonical_bytes(root)


class SftpDelivery:
    """Delivers batches; `channels` upload channels share one connection per batch.

    4 is the measured optimum on this 2-core machine (bench/delivery.py --sweep 1,2,8): more
    channels mean more server processes writing in parallel, but past 4 the threads only
    compete for the GIL.
    """

    def __init__(
        self,
        channels: int = DEFAULT_CHANNELS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if channels < 1:
            raise ValueError("channels must be at least 1")
        self._channels = channels
        self._clock = clock

    def deliver(
        self,
        target: SftpTarget,
        folder: str,
        files: Sequence[OutgoingFile],
        *,
        manifest: ManifestInfo,
    ) -> DeliveryResult:
        """Upload `files` into `folder` on `target`, then the manifest; see the module doc."""
        names = [f.name for f in files]
        if not files or len(set(names)) != len(names):
            raise ValueError("a batch holds at least one file and each name once")
        _check_name(manifest.file_name, "manifest name (from the batch id)")
        document = build_manifest(manifest, files, self._clock())
        started = time.perf_counter()
        ssh, sftp = open_sftp(target)
        try:
            # Every thread's reads and writes give up after the target's timeout: a hung peer
            # becomes a retryable error, not a stuck worker.
            sftp.get_channel().settimeout(target.timeout)  # type: ignore[union-attr]
            transport = ssh.get_transport()
            assert transport is not None  # connected by open_sftp
            transport.channel_timeout = target.timeout  # opening further channels, too
            batch = _Batch(target, folder, sftp, transport, self._channels)
            existing = batch.existing_sizes()
            # Read back only what could be there already: re-delivery after a failure.
            skipped = batch.identical([f for f in files if existing.get(f.name) == len(f.data)])
            kept = set(skipped)
            delivered = batch.upload([f for f in files if f.name not in kept])
            batch.upload_last(manifest.file_name, document)
        finally:
            sftp.close()
            ssh.close()
        order = {n: i for i, n in enumerate(names)}
        delivered.sort(key=order.__getitem__)
        skipped.sort(key=order.__getitem__)
        sizes = {f.name: len(f.data) for f in files}
        return DeliveryResult(
            delivered=delivered,
            skipped=skipped,
            manifest=manifest.file_name,
            bytes=sum(sizes[n] for n in delivered) + len(document),
            seconds=time.perf_counter() - started,
        )


class _Batch:
    """One batch on one connection: the folder listing, the upload channels, the first error."""

    def __init__(
        self,
        target: SftpTarget,
        folder: str,
        sftp: paramiko.SFTPClient,
        transport: paramiko.Transport,
        channels: int,
    ) -> None:
        self._target = target
        self._folder = folder
        self._sftp = sftp
        self._transport = transport
        self._channels = channels
        self._lock = threading.Lock()
        self._error: Exception | None = None
        self._stopping = threading.Event()
        self._open: dict[int, _RawSftp] = {}  # one thread uses one index at a time

    def existing_sizes(self) -> dict[str, int]:
        """Regular files already in the folder by name, with their sizes (one round trip)."""
        try:
            entries = self._sftp.listdir_attr(self._folder)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._classify(exc) from None
        return {e.filename: e.st_size or 0 for e in entries if stat.S_ISREG(e.st_mode or 0)}

    def identical(self, files: Sequence[OutgoingFile]) -> list[str]:
        """Names of `files` already in place with exactly their bytes (read back, compared)."""
        return self._parallel(files, lambda channel, work: channel.identical(work))

    def upload(self, files: Sequence[OutgoingFile]) -> list[str]:
        """Upload `files`; return their names (all of them, or an error is raised)."""
        return self._parallel(files, lambda channel, work: channel.upload(work, self._stopping))

    def upload_last(self, name: str, data: bytes) -> None:
        """One file after everything else (the manifest), on a channel opened already."""
        try:
            self._channel(0).upload(iter([(name, data)]), threading.Event())
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._classify(exc) from None

    def _parallel(
        self,
        files: Sequence[OutgoingFile],
        job: Callable[[_RawSftp, Iterator[tuple[str, bytes]]], list[str]],
    ) -> list[str]:
        """Run `job` on up to `channels` channels, all fed from one queue; first error stops all."""
        work: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        for f in files:
            work.put((f.name, f.data))
        results: list[str] = []
        threads = [
            threading.Thread(target=self._worker, args=(i, job, work, results), daemon=True)
            for i in range(min(self._channels, len(files)))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self._error is not None:
            raise self._error
        return results

    def _channel(self, index: int) -> _RawSftp:
        """Channel `index`, opened on first use and kept for the batch's later steps."""
        channel = self._open.get(index)
        if channel is None:
            channel = self._open[index] = _RawSftp(
                self._transport, self._folder, self._target.timeout
            )
        return channel

    def _worker(
        self,
        index: int,
        job: Callable[[_RawSftp, Iterator[tuple[str, bytes]]], list[str]],
        work: queue.SimpleQueue[tuple[str, bytes]],
        results: list[str],
    ) -> None:
        try:
            names = job(self._channel(index), _drain(work))
            with self._lock:
                results += names
        except Exception as exc:
            with self._lock:
                first_error = self._error is None
                if first_error:
                    self._error = self._classify(exc)
                    self._stopping.set()
            if first_error:
                # Unblock the other channels at once instead of letting each run into its
                # timeout; their errors after this are consequences, not causes.
                self._transport.close()

    def _where(self) -> str:
        return f"{self._target.host}:{self._target.port}"

    def _classify(self, exc: Exception) -> Exception:
        return _classify(exc, self._folder, self._where())


def _classify(exc: Exception, folder: str, where: str) -> Exception:
    """What the caller must do about `exc`: fix the configuration, or retry later."""
    if isinstance(exc, ConfigurationError | RetryableDeliveryError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return ConfigurationError("folder", f"{folder} does not exist on {where}")
    if isinstance(exc, PermissionError):
        return ConfigurationError("folder", f"{folder} on {where}: permission denied")
    if isinstance(exc, _TornUpload):
        return RetryableDeliveryError(f"SFTP {where}: {exc}")
    if isinstance(exc, OSError | EOFError | paramiko.SSHException):
        return RetryableDeliveryError(f"SFTP upload to {where} failed ({type(exc).__name__})")
    return exc


def _drain(work: queue.SimpleQueue[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    while True:
        try:
            yield work.get_nowait()
        except queue.Empty:
            return


class _TornUpload(OSError):
    """The server holds another size than was sent: retry, never rename it into place."""


# SFTP version 3 (draft-ietf-secsh-filexfer-02), the subset an upload needs.
_INIT, _VERSION, _OPEN, _CLOSE, _READ_REQ, _WRITE, _FSTAT = 1, 2, 3, 4, 5, 6, 8
_EXTENDED, _STATUS, _HANDLE, _DATA, _ATTRS = 200, 101, 102, 103, 105
_READ, _WRITE_CREATE_TRUNCATE = 0x01, 0x02 | 0x08 | 0x10
_ATTR_SIZE = 0x01
_EOF, _NO_SUCH_FILE, _PERMISSION_DENIED = 1, 2, 3
_POSIX_RENAME = b"posix-rename@openssh.com"
_CHUNK = 32768  # the WRITE size every SFTP server must accept
_IN_FLIGHT_FILES = 64
_IN_FLIGHT_BYTES = 1 << 20  # well inside the 2 MB channel window: sending never stalls on it
_FLUSH_REQUESTS = 256  # sent at the latest after this many, so a long burst cannot stall them
_U32 = struct.Struct(">I")


def _string(value: bytes) -> bytes:
    return _U32.pack(len(value)) + value


def _request(kind: int, request_id: int, *fields: bytes) -> bytes:
    body = b"".join(fields)
    return _U32.pack(len(body) + 5) + bytes((kind,)) + _U32.pack(request_id) + body


class _Upload:
    """One file on its way: `<name>.part` opened, written, checked, renamed."""

    __slots__ = ("data", "final", "handle", "name", "part", "waiting")

    def __init__(self, folder: str, name: str, data: bytes) -> None:
        self.name = name
        self.data = data
        self.final = posixpath.join(folder, name).encode()
        self.part = self.final + PART_SUFFIX.encode()
        self.handle = b""
        self.waiting = 0  # replies still due before the rename may be sent


class _RawSftp:
    """An SFTP channel that pipelines whole uploads, not only the writes of one file.

    paramiko's SFTPClient waits for every OPEN, CLOSE, STAT and RENAME before it sends the next
    request, so a small file costs four round trips and as many thread wake-ups; with renames
    that made the hub slower than OpenSSH's `sftp -b`. Here up to 64 files are in flight on one
    channel and every request that does not depend on a reply goes out at once, batched into as
    few SSH packets as fit. Order still guards the receiver: the rename of a file is sent only
    after the server confirmed every WRITE and the CLOSE and reported (FSTAT on the open handle,
    answered after the writes) exactly the size that was sent.
    """

    def __init__(self, transport: paramiko.Transport, folder: str, timeout: float) -> None:
        self._folder = folder
        self._channel = transport.open_session(timeout=timeout)
        self._channel.settimeout(timeout)  # a hung peer ends in socket.timeout, not a hang
        # paramiko waits for the subsystem reply without any timeout: a peer that stops
        # answering right here would hold this thread (and the batch) for ever.
        watchdog = threading.Timer(timeout, transport.close)
        watchdog.start()
        try:
            self._channel.invoke_subsystem("sftp")
        finally:
            watchdog.cancel()
        self._buffer = bytearray()
        self._ids = itertools.count(1)
        self._channel.sendall(_U32.pack(5) + bytes((_INIT,)) + _U32.pack(3))
        kind, body = self._reply()
        if kind != _VERSION:
            raise OSError(f"SFTP server answered INIT with packet type {kind}")
        self._extensions: set[bytes] = set()
        offset = 4
        while offset < len(body):
            (length,) = _U32.unpack_from(body, offset)
            self._extensions.add(body[offset + 4 : offset + 4 + length])
            (skip,) = _U32.unpack_from(body, offset + 4 + length)
            offset += 8 + length + skip

    def _flush(self, out: list[bytes]) -> None:
        """Send the requests gathered so far, unless a reply can be read without waiting.

        Replies come in bursts; answering the whole burst before sending lets the requests it
        causes share SSH packets (2,000 files: 1,400 packets sent instead of 5,900).
        """
        if not out:
            return
        buffered = (
            len(self._buffer) >= 4 and len(self._buffer) >= 4 + _U32.unpack_from(self._buffer)[0]
        )
        if (buffered or self._channel.recv_ready()) and len(out) < _FLUSH_REQUESTS:
            return
        self._channel.sendall(b"".join(out))
        out.clear()

    def _reply(self) -> tuple[int, bytes]:
        while True:
            if len(self._buffer) >= 4:
                (length,) = _U32.unpack_from(self._buffer)
                if len(self._buffer) >= 4 + length:
                    packet = bytes(self._buffer[4 : 4 + length])
                    del self._buffer[: 4 + length]
                    return packet[0], packet[1:]
            data = self._channel.recv(1 << 18)
            if not data:
                raise EOFError("SFTP channel closed by the server")
            self._buffer += data

    def upload(self, items: Iterator[tuple[str, bytes]], stop: threading.Event) -> list[str]:
        """Upload every (name, data) from `items`; return the names now in place."""
        pending: dict[int, tuple[_Upload, int]] = {}  # request id -> (file, request kind)
        out: list[bytes] = []
        done: list[str] = []
        in_flight: set[_Upload] = set()
        queued_bytes = 0
        exhausted = False
        while True:
            while (
                not exhausted
                and not stop.is_set()
                and len(in_flight) < _IN_FLIGHT_FILES
                and queued_bytes < _IN_FLIGHT_BYTES
            ):
                item = next(items, None)
                if item is None:
                    exhausted = True
                    break
                up = _Upload(self._folder, *item)
                in_flight.add(up)
                queued_bytes += len(up.data)
                out.append(
                    self._send(
                        pending,
                        up,
                        _OPEN,
                        _string(up.part),
                        _U32.pack(_WRITE_CREATE_TRUNCATE),
                        _U32.pack(0),
                    )
                )
            if not in_flight:
                return done
            self._flush(out)
            kind, body = self._reply()
            (request_id,) = _U32.unpack_from(body)
            up, sent = pending.pop(request_id)
            if sent == _OPEN:
                up.handle = self._handle(kind, body, up)
                for offset in range(0, len(up.data), _CHUNK):
                    out.append(
                        self._send(
                            pending,
                            up,
                            _WRITE,
                            _string(up.handle),
                            struct.pack(">Q", offset),
                            _string(up.data[offset : offset + _CHUNK]),
                        )
                    )
                out.append(self._send(pending, up, _FSTAT, _string(up.handle)))
                out.append(self._send(pending, up, _CLOSE, _string(up.handle)))
                up.waiting = len(up.data) // _CHUNK + (len(up.data) % _CHUNK > 0) + 2
                continue
            if sent == _FSTAT:
                self._check_size(kind, body, up)
            elif sent in (_WRITE, _CLOSE, _EXTENDED):
                self._check_status(kind, body, up)
            if sent == _EXTENDED:
                in_flight.discard(up)
                queued_bytes -= len(up.data)
                done.append(up.name)
                continue
            up.waiting -= 1
            if up.waiting == 0:
                self._require_posix_rename()
                out.append(
                    self._send(
                        pending,
                        up,
                        _EXTENDED,
                        _string(_POSIX_RENAME),
                        _string(up.part),
                        _string(up.final),
                    )
                )

    def _require_posix_rename(self) -> None:
        # Asked only now, so an account that may not write at all (a read-only server offers
        # no posix-rename) is reported as the permission refusal its OPEN got first.
        if _POSIX_RENAME not in self._extensions:
            # Without it a re-delivery could not replace a file atomically (SFTP v3 RENAME
            # refuses an existing target): a server we cannot use as configured.
            raise ConfigurationError("host", "the SFTP server lacks posix-rename@openssh.com")

    def _send(
        self, pending: dict[int, tuple[_Upload, int]], up: _Upload, kind: int, *fields: bytes
    ) -> bytes:
        request_id = next(self._ids)
        pending[request_id] = (up, kind)
        return _request(kind, request_id, *fields)

    def identical(self, items: Iterator[tuple[str, bytes]]) -> list[str]:
        """Names among `items` whose final file holds exactly these bytes, read back pipelined.

        Anything unexpected (gone, shorter, other bytes) counts as different: re-uploading is
        always correct, skipping only when the bytes are known to be the same.
        """
        pending: dict[int, tuple[_Upload, int, int]] = {}  # id -> (file, request kind, offset)
        out: list[bytes] = []
        same: list[str] = []
        in_flight: dict[_Upload, dict[int, bytes]] = {}  # file -> data read, by offset
        queued_bytes = 0
        exhausted = False

        def send(up: _Upload, kind: int, offset: int, *fields: bytes) -> None:
            request_id = next(self._ids)
            pending[request_id] = (up, kind, offset)
            out.append(_request(kind, request_id, *fields))

        while True:
            while (
                not exhausted
                and len(in_flight) < _IN_FLIGHT_FILES
                and queued_bytes < _IN_FLIGHT_BYTES
            ):
                item = next(items, None)
                if item is None:
                    exhausted = True
                    break
                up = _Upload(self._folder, *item)
                in_flight[up] = {}
                queued_bytes += len(up.data)
                send(up, _OPEN, 0, _string(up.final), _U32.pack(_READ), _U32.pack(0))
            if not in_flight:
                return same
            self._flush(out)
            kind, body = self._reply()
            (request_id,) = _U32.unpack_from(body)
            up, sent, offset = pending.pop(request_id)
            parts = in_flight[up]
            if sent == _OPEN and kind == _HANDLE:
                up.handle = self._handle(kind, body, up)
                for at in range(0, len(up.data), _CHUNK):
                    size = min(_CHUNK, len(up.data) - at)
                    send(up, _READ_REQ, at, _string(up.handle), struct.pack(">QI", at, size))
                send(up, _CLOSE, 0, _string(up.handle))
                up.waiting = len(up.data) // _CHUNK + (len(up.data) % _CHUNK > 0) + 1
                continue
            if sent == _OPEN:  # no such file (any more): not the same
                self._check_status(kind, body, up, missing_ok=True)
                up.waiting = 0
            elif sent == _READ_REQ:
                if kind == _DATA:
                    (length,) = _U32.unpack_from(body, 4)
                    parts[offset] = body[8 : 8 + length]
                else:  # EOF before the end: shorter than ours
                    self._check_status(kind, body, up, missing_ok=True)
                up.waiting -= 1
            else:
                self._check_status(kind, body, up)
                up.waiting -= 1
            if up.waiting == 0:
                del in_flight[up]
                queued_bytes -= len(up.data)
                if b"".join(parts[at] for at in sorted(parts)) == up.data:
                    same.append(up.name)

    def _handle(self, kind: int, body: bytes, up: _Upload) -> bytes:
        if kind != _HANDLE:
            self._check_status(kind, body, up)
            raise OSError(f"{up.name}: no handle in reply to OPEN")
        (length,) = _U32.unpack_from(body, 4)
        return body[8 : 8 + length]

    def _check_size(self, kind: int, body: bytes, up: _Upload) -> None:
        if kind != _ATTRS:
            self._check_status(kind, body, up)
            raise OSError(f"{up.name}: no attributes in reply to FSTAT")
        (flags,) = _U32.unpack_from(body, 4)
        size = struct.unpack_from(">Q", body, 8)[0] if flags & _ATTR_SIZE else None
        if size != len(up.data):
            raise _TornUpload(f"{up.name} arrived with {size} of {len(up.data)} bytes")

    @staticmethod
    def _check_status(kind: int, body: bytes, up: _Upload, *, missing_ok: bool = False) -> None:
        """Raise for a failure status; with `missing_ok` a file that is gone or ends is fine."""
        if kind != _STATUS:
            raise OSError(f"{up.name}: unexpected SFTP reply {kind}")
        (code,) = _U32.unpack_from(body, 4)
        if code == 0 or (missing_ok and code in (_EOF, _NO_SUCH_FILE)):
            return
        (length,) = _U32.unpack_from(body, 8)
        message = f"{up.name}: {body[12 : 12 + length].decode(errors='replace')}"
        if code == _NO_SUCH_FILE:
            raise FileNotFoundError(errno.ENOENT, message)
        if code == _PERMISSION_DENIED:
            raise PermissionError(errno.EACCES, message)
        raise OSError(message)
