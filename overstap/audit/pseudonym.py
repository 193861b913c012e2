"""Keyed pseudonyms for personal numbers.

A plain hash of a 9-digit BSN is reversible by enumerating 10^9 candidates in minutes, so the
subject key is an HMAC-SHA256 under a secret key (DOMAIN.md). The kind is part of the message so
a BSN and an onderwijsnummer with the same digits never share a pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac

from overstap.domain.identifiers import Bsn, Onderwijsnummer

PREFIX = "ps1_"  # versioned so a key rotation can run side by side with the old pseudonyms


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("pseudonym key must have at least 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Pseudonymizer(<key redacted>)"

    def subject(self, identifier: Bsn | Onderwijsnummer) -> str:
        kind = "bsn" if isinstance(identifier, Bsn) else "onr"
        mac = hmac.new(self._key, f"{kind}:{identifier.value}".encode(), hashlib.sha256)
        # 128 bits: collision-free for any realistic population, short enough to read and index.
        return PREFIX + mac.hexdigest()[:32]
