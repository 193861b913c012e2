"""In-memory fakes of the ports, for unit tests of the core. Each passes the same contract
suite as the real adapters (tests/contract/)."""

from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from overstap.domain.errors import ConfigurationError, RetryableDeliveryError
from overstap.ports import ExportDocument, Outgoing, Route, SendResult, SisSchool


class FakeSisConnector:
    """Exports held in memory per school location, behind a token; can fail on request."""

    def __init__(self, exports: Mapping[str, bytes], *, token: str) -> None:
        self.exports = dict(exports)
        self._token = token
        self._failures = 0
        self._slow = False

    def __repr__(self) -> str:
        return f"FakeSisConnector({sorted(self.exports)})"

    def fail_next(self) -> None:
        self._failures += 1

    def slow_down(self, seconds: float, timeout: float) -> None:
        # A fake has no clock to wait on: "slower than the timeout" is a timeout.
        self._slow = seconds > timeout

    def fetch(self, school: SisSchool, since: str | None) -> Iterator[ExportDocument]:
        if not hmac.compare_digest(school.settings.get("token", ""), self._token):
            raise ConfigurationError(f"sis.{school.location}.token", "was refused")
        if self._failures:
            self._failures -= 1
            raise RetryableDeliveryError("fake SIS unavailable")
        if self._slow:
            raise RetryableDeliveryError("fake SIS timed out")
        data = self.exports.get(school.location)
        if data is None:
            raise ConfigurationError(f"sis.{school.location}", "no export for this school")
        yield ExportDocument(
            name="leerlingen.csv",
            open=lambda: io.BytesIO(data),
            version=f"sha256:{hashlib.sha256(data).hexdigest()}",
        )


class FakeReceiver:
    """A receiver that keeps what it got in a folder (so it survives the sender's process) and
    deduplicates on the MessageID, as real receivers must. Failure modes on request."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def stored(self) -> dict[str, bytes]:
        return {p.stem: p.read_bytes() for p in self.folder.glob("*.msg")}

    def fail(self, mode: str, times: int = 1) -> None:
        """mode: 'transient' (before storing), 'permanent', 'store_then_transient'."""
        (self.folder / "fail").write_text(f"{mode} {times}")

    def _take_failure(self) -> str | None:
        path = self.folder / "fail"
        if not path.exists():
            return None
        mode, times = path.read_text().split()
        left = int(times) - 1
        if left > 0:
            path.write_text(f"{mode} {left}")
        else:
            path.unlink()
        return mode

    def receive(self, message_id: str, payload: bytes) -> None:
        name = message_id.replace(":", "_")
        final = self.folder / f"{name}.msg"
        if final.exists():
            return  # the same MessageID again: already stored, nothing doubles
        part = self.folder / f"{name}.part"
        part.write_bytes(payload)
        part.replace(final)


class FakeDeliveryTransport:
    """In-memory transport over a `FakeReceiver`; passes the delivery contract like the real ones."""

    def __init__(self, receiver: FakeReceiver) -> None:
        self.receiver = receiver
        self.sent: list[str] = []

    def send(self, route: Route, messages: Sequence[Outgoing]) -> list[SendResult]:
        results = []
        for m in messages:
            mode = self.receiver._take_failure()
            self.sent.append(m.message_id)
            if mode == "transient":
                results.append(SendResult(m.message_id, False, True, "0051 service unavailable"))
            elif mode == "permanent":
                results.append(SendResult(m.message_id, False, False, "0004 not XSD-conform"))
            elif mode == "store_then_transient":
                self.receiver.receive(m.message_id, m.payload)
                results.append(SendResult(m.message_id, False, True, "timeout after storing"))
            else:
                self.receiver.receive(m.message_id, m.payload)
                results.append(SendResult(m.message_id, True, detail="accepted"))
        return results
