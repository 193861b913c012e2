"""In-memory fakes of the ports, for unit tests of the core. Each passes the same contract
suite as the real adapters (tests/contract/)."""

from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Iterator, Mapping

from overstap.domain.errors import ConfigurationError, RetryableDeliveryError
from overstap.ports import ExportDocument, SisSchool


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
