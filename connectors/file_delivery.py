"""File-based delivery behind the `DeliveryTransport` port: an SFTP drop or a (mounted) folder.

Each message becomes one file named after its MessageID (`<uuid>.p7m` for a CMS payload,
`<uuid>.xml` for signed XML), so a resend after a crash lands on the same name and is
recognised; each batch ends with a manifest signed by the hub (ADR 6) listing names, sizes and
sha256, written last. Files appear under their final names only complete (`.part`, then an
atomic rename).

Route settings:
- folder: `folder` (`{recipient}` is replaced by the BRIN);
- sftp: `host`, `port`, `username`, `key_path`, `host_key`, `folder`, `timeout`;
- both: `oin` (the receiver's OIN, for the manifest) and optionally `pki_dir` (default: the
  hub's `OVERSTAP_PKI_DIR`), whose hub signing key signs the manifests.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from connectors.sftp_delivery import ManifestInfo, OutgoingFile, SftpDelivery, build_manifest
from connectors.ssh import SftpTarget
from overstap.config import Settings
from overstap.domain.errors import ConfigurationError
from overstap.pki.devca import passphrase_from
from overstap.ports import Outgoing, Route, SendResult
from overstap.services.pki import DEV_HUB_OIN, hub_signer
from overstap.xml.dsig import Signer

_NAMED_FILE = re.compile(r"SIG-GM[0-9]{4}-[0-9]{8}-[0-9a-f]{12}\.(xml|csv)")


def file_name(message: Outgoing) -> str:
    """`urn:uuid:<uuid>` -> `<uuid>.p7m` / `.xml`: a plain name that is the MessageID. A signal
    file keeps its own name (`SIG-<gemeente>-<day>-<id>.xml|.csv`, + `.p7m` when encrypted), so
    a municipality sees which file is the XML and which the CSV of the same delivery."""
    plain = message.payload.lstrip()[:1] in (b"<", b"\xef")  # XML, or CSV with its BOM
    if _NAMED_FILE.fullmatch(message.object_ref):
        return message.object_ref if plain else f"{message.object_ref}.p7m"
    ident = message.message_id.removeprefix("urn:uuid:")
    uuid.UUID(ident)  # only our own MessageIDs become file names
    return f"{ident}.xml" if message.payload.lstrip()[:1] == b"<" else f"{ident}.p7m"


def _setting(route: Route, key: str, default: str | None = None) -> str:
    value = route.settings.get(key, default)
    if value is None or not str(value).strip():
        raise ConfigurationError(f"delivery route {route.recipient}: {key}", "is required")
    return str(value)


class _HubSigner:
    """The hub's signing key, loaded on first use and kept (per PKI directory)."""

    def __init__(self) -> None:
        self._signers: dict[Path, Signer] = {}

    def for_route(self, route: Route) -> Signer:
        pki_dir = Path(route.settings.get("pki_dir") or Settings.from_env().pki_dir)
        found = self._signers.get(pki_dir)
        if found is None:
            found = self._signers[pki_dir] = hub_signer(
                pki_dir, passphrase_from(pki_dir, os.environ)
            )
        return found


def _manifest(route: Route, signer: Signer) -> ManifestInfo:
    return ManifestInfo(
        batch_id=uuid.uuid4().hex,
        sender_oin=os.environ.get("OVERSTAP_HUB_OIN", DEV_HUB_OIN),
        recipient_oin=_setting(route, "oin"),
        signer=signer,
    )


class SftpDeliveryTransport:
    """One SFTP connection per batch, several channels (connectors/sftp_delivery.py)."""

    def __init__(self) -> None:
        self._keys = _HubSigner()
        self._sftp = SftpDelivery()

    def send(self, route: Route, messages: Sequence[Outgoing]) -> list[SendResult]:
        target = SftpTarget(
            host=_setting(route, "host"),
            port=int(_setting(route, "port", "22")),
            username=_setting(route, "username"),
            key_path=Path(_setting(route, "key_path")),
            host_key=_setting(route, "host_key"),
            timeout=float(_setting(route, "timeout", "30")),
        )
        files = [OutgoingFile(file_name(m), m.payload) for m in messages]
        folder = _setting(route, "folder").replace("{recipient}", route.recipient)
        # Connection and transfer failures raise RetryableDeliveryError before any result:
        # the whole batch waits for its retry; files already in place are skipped next time.
        result = self._sftp.deliver(
            target, folder, files, manifest=_manifest(route, self._keys.for_route(route))
        )
        skipped = set(result.skipped)
        return [
            SendResult(
                m.message_id,
                True,
                detail=f"{'already there' if f.name in skipped else 'stored'}, {result.manifest}",
            )
            for m, f in zip(messages, files, strict=True)
        ]


class FolderDeliveryTransport:
    """The same promises on a local or mounted folder (a share the receiver reads)."""

    def __init__(self) -> None:
        self._keys = _HubSigner()

    def send(self, route: Route, messages: Sequence[Outgoing]) -> list[SendResult]:
        folder = Path(_setting(route, "folder").replace("{recipient}", route.recipient))
        if not folder.is_dir():
            raise ConfigurationError(
                f"delivery route {route.recipient}: folder", f"{folder} is not a folder"
            )
        results: list[SendResult] = []
        files: list[OutgoingFile] = []
        for m in messages:
            f = OutgoingFile(file_name(m), m.payload)
            final = folder / f.name
            if final.exists() and hashlib.sha256(final.read_bytes()).hexdigest() == m.sha256:
                files.append(f)
                results.append(SendResult(m.message_id, True, detail="already there"))
                continue
            # The name is our MessageID: whatever else is there (a damaged copy) is replaced by
            # the hub's bytes, as the SFTP transport does.
            _write_atomically(final, f.data)
            files.append(f)
            results.append(SendResult(m.message_id, True, detail="stored"))
        if files:
            info = _manifest(route, self._keys.for_route(route))
            document = build_manifest(info, files, datetime.now(UTC))
            _write_atomically(folder / info.file_name, document)
        return results


def _write_atomically(final: Path, data: bytes) -> None:
    part = final.with_name(final.name + ".part")
    with part.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())  # the rename must never expose a file whose bytes are not on disk
    os.replace(part, final)
