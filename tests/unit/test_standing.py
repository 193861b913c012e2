"""A student's standing is the furthest of their registrations (reports.furthest), stated here
case by case from DOMAIN.md's status order, not from the ranking table the code uses: the
school reports and the year's known truth both rely on it."""

from __future__ import annotations

import pytest

from overstap.services.reports import NIET_IN_BEELD, furthest


@pytest.mark.parametrize(
    ("statuses", "standing"),
    [
        ([], NIET_IN_BEELD),
        (["ontvangen"], "ontvangen"),
        (["ontvangen", "ingeschreven"], "ingeschreven"),  # enrolled anywhere wins
        (["overeenkomst_aangeboden", "ontvangen"], "overeenkomst_aangeboden"),
        (["niet_tot_inschrijving", "ontvangen"], "ontvangen"),  # an open registration counts
        (["ingetrokken", "niet_tot_inschrijving"], "niet_tot_inschrijving"),
        (["uitgeschreven", "ontvangen"], "ontvangen"),
        (["uitgeschreven", "niet_tot_inschrijving"], "uitgeschreven"),
        (["ingeschreven", "uitgeschreven"], "ingeschreven"),  # re-enrolled elsewhere
    ],
)
def test_the_furthest_registration_is_the_standing(statuses: list[str], standing: str) -> None:
    assert furthest(statuses) == standing
    assert furthest(reversed(statuses)) == standing  # order of arrival does not matter
