"""What the signal code holds about a person never shows in a repr (a log line, a traceback)."""

from __future__ import annotations

from datetime import date

from overstap.domain.states import SignalKind
from overstap.store.signals import Candidate, PendingSignal


def test_candidate_and_pending_signal_reprs_hold_no_personal_data() -> None:
    row = {"bsn": "123456782", "voornamen": "Sem Pieter", "straat": "Lindelaan"}
    candidate = Candidate(1, "ps1_" + "a" * 32, SignalKind.ZOMERLEK, date(2027, 10, 1),
                          date(2009, 5, 14), None, "GM0153")  # fmt: skip
    pending = PendingSignal(2, "ref", SignalKind.UITVAL, "2026-2027", "reden", date(2027, 11, 1),
                            "GM0153", "MC17", 1, row, "De Horizon")  # fmt: skip
    shown = repr(candidate) + repr(pending)
    assert not [v for v in ("2009-05-14", "2009, 5, 14", *row.values()) if v in shown]
    assert "ps1_" in shown and "GM0153" in shown
