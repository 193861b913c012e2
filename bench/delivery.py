"""Benchmark: SFTP batch delivery by the hub against OpenSSH's own batch client.

Issue target: SftpDelivery (one connection, several channels, `.part` + posix_rename per file,
a signed manifest last) delivers at least 1.5x the files/s of `sftp -b` (one `put` per file).

Run: `.venv/bin/python bench/delivery.py [--files 2000] [--size 9216] [--channels 4]
[--rounds 3] [--sweep 1,2,4,8]`

A local OpenSSH sshd (tests/sshd.py, not chrooted) serves both; each round delivers N random
files of `size` bytes (a CMS-encrypted dossier is about 9 KB) with the hub, then the same number
of equally sized files with `sftp -b` (same key, pinned host key via a known_hosts file), each
into an empty folder. Both timings are wall-clock and include connecting; the hub's includes
building and signing the manifest. Prints the median of the rounds; `--sweep` also times the
hub with other channel counts, to pick the default. Last, the time to re-deliver the same batch
(every file read back, compared and skipped).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sshd import SshdServer, start_sshd, target

from connectors.sftp_delivery import ManifestInfo, OutgoingFile, SftpDelivery
from overstap.domain.identifiers import Oin
from overstap.pki import PartySpec, init_dev_pki
from overstap.xml.dsig import Signer

TARGET_RATIO = 1.5
HUB_OIN = "00000099000000000001"
MBO_OIN = "00000007001234567000"
PASS = b"bench-passphrase-long-enough"


def _signer(work: Path) -> Signer:
    hub = PartySpec(slug="hub", name="Overstap hub", oin=Oin(HUB_OIN), kind="hub")
    pki = init_dev_pki(work / "pki", [hub], PASS)
    return Signer.from_files(
        pki.key_path("hub", "sign"), pki.cert_path("hub", "sign"), PASS, [pki.issuing_cert_path]
    )


def _empty(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def _hub(server: SshdServer, signer: Signer, files: list[OutgoingFile], channels: int) -> float:
    _empty(server.root / "hub")
    info = ManifestInfo(f"BENCH-{channels}-{time.time_ns()}", HUB_OIN, MBO_OIN, signer)
    started = time.perf_counter()
    result = SftpDelivery(channels=channels).deliver(
        target(server, timeout=30.0), "hub", files, manifest=info
    )
    seconds = time.perf_counter() - started
    arrived = [p for p in (server.root / "hub").iterdir() if not p.name.startswith("manifest-")]
    assert len(result.delivered) == len(files) == len(arrived), "hub: files missing"
    return seconds


def _redelivery(
    server: SshdServer, signer: Signer, files: list[OutgoingFile], channels: int
) -> None:
    """The same batch again, as after a crash before the outbox was marked: all read back."""
    info = ManifestInfo(f"BENCH-{channels}-again", HUB_OIN, MBO_OIN, signer)
    started = time.perf_counter()
    result = SftpDelivery(channels=channels).deliver(
        target(server, timeout=30.0), "hub", files, manifest=info
    )
    seconds = time.perf_counter() - started
    assert len(result.skipped) == len(files), "re-delivery uploaded again"
    print(f"re-delivery, all {len(files):,} read back and skipped: {seconds:.2f} s")


def _openssh(server: SshdServer, work: Path, count: int, size: int) -> float:
    """`sftp -b`: one put per file of a local folder of `count` random files."""
    local = work / "local"
    if not local.is_dir() or len(os.listdir(local)) != count:
        _empty(local)
        for i in range(count):
            (local / f"d{i:06d}.p7m").write_bytes(os.urandom(size))
    _empty(server.root / "openssh")
    batch = work / "batch"
    batch.write_text(
        "cd openssh\n" + "".join(f"put {p} {p.name}\n" for p in sorted(local.iterdir()))
    )
    known_hosts = work / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{server.port} {server.host_key_line}\n")
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 (OpenSSH's client with our own arguments)
        [
            shutil.which("sftp") or "/usr/bin/sftp",
            "-q",
            "-b",
            str(batch),
            "-i",
            str(server.client_key_path),
            "-P",
            str(server.port),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            f"{server.user}@127.0.0.1",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    assert len(os.listdir(server.root / "openssh")) == count, "openssh: files missing"
    return seconds


def _rates(label: str, count: int, size: int, seconds: float) -> float:
    per_s = count / seconds
    print(
        f"{label:<28} {seconds:7.2f} s  {per_s:8.0f} files/s  {count * size / seconds / 1e6:6.2f} MB/s"
    )
    return per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=9 * 1024)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep", default="", help="other channel counts to time, e.g. 1,2,8")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="overstap-bench-delivery-"))
    server = start_sshd(
        shutil.which("sshd", path="/usr/sbin:/usr/bin") or "sshd", work / "etc", work / "root"
    )
    try:
        signer = _signer(work)
        files = [OutgoingFile(f"d{i:06d}.p7m", os.urandom(args.size)) for i in range(args.files)]
        print(f"{args.files:,} files of {args.size:,} bytes, {args.rounds} rounds (median)")
        counts = sorted({args.channels, *(int(c) for c in args.sweep.split(",") if c)})
        hub_s: dict[int, list[float]] = {c: [] for c in counts}
        openssh_s: list[float] = []
        for _ in range(args.rounds):  # interleaved, so drift in machine load hits all alike
            for channels in counts:
                hub_s[channels].append(_hub(server, signer, files, channels))
            openssh_s.append(_openssh(server, work, args.files, args.size))
        for channels in counts:
            seconds = statistics.median(hub_s[channels])
            rate = _rates(f"hub, {channels} channel(s)", args.files, args.size, seconds)
            if channels == args.channels:
                hub = rate
        openssh = _rates("OpenSSH sftp -b", args.files, args.size, statistics.median(openssh_s))
        ratio = hub / openssh
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        print(f"ratio hub/OpenSSH {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
        _redelivery(server, signer, files, args.channels)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
