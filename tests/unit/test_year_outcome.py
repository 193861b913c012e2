"""The year's comparison with the known truth (services.year.YearOutcome.differences) finds a
differing standing or signal count, and its lines name schools and municipalities, never a
student's key."""

from __future__ import annotations

from collections import Counter

from overstap.services.year import YearOutcome


def test_equal_outcomes_have_no_differences_and_unequal_ones_are_counted() -> None:
    truth = YearOutcome(
        {("12AB00", "L1"): "ingeschreven", ("12AB00", "L2"): "ingeschreven"},
        Counter({("GM0363", "zomerlek"): 2}),
    )
    assert truth.differences(truth) == []
    hub = YearOutcome(
        {("12AB00", "L1"): "niet_in_beeld", ("12AB00", "L2"): "niet_in_beeld"},
        Counter({("GM0363", "zomerlek"): 1, ("GM0599", "uitval"): 1}),
    )
    found = hub.differences(truth)
    assert found == [
        "school 12AB00: 2 student(s) niet_in_beeld here, ingeschreven there",
        "signals GM0363 zomerlek: 1 here, 2 there",
        "signals GM0599 uitval: 1 here, 0 there",
    ]
    assert not [line for line in found if "L1" in line or "L2" in line]
    # A student the other side does not know differs too.
    assert YearOutcome({("12AB00", "L3"): "ontvangen"}).differences(YearOutcome()) == [
        "school 12AB00: 1 student(s) ontvangen here, None there"
    ]
