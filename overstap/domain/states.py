"""State machines as transition tables.

Each machine is data: a table of allowed moves, checked in one place, so the flows cannot invent a
transition and a test can print the whole table. A forbidden move raises `InvalidTransition`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from overstap.domain.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True)
class StateMachine(Generic[S]):
    """`allowed[current]` is the set of states reachable in one step; `None` is "no state yet"."""

    name: str
    allowed: Mapping[S | None, frozenset[S]]

    def can(self, current: S | None, target: S) -> bool:
        return target in self.allowed.get(current, frozenset())

    def transition(self, current: S | None, target: S) -> S:
        if not self.can(current, target):
            raise InvalidTransition(self.name, current if current is not None else "(new)", target)
        return target

    def is_final(self, state: S) -> bool:
        return not self.allowed.get(state)

    def states(self) -> Iterable[S]:
        seen: dict[S, None] = {}
        for frm, tos in self.allowed.items():
            if frm is not None:
                seen[frm] = None
            for t in tos:
                seen[t] = None
        return list(seen)


def _table(rows: Mapping[S | None, Iterable[S]]) -> dict[S | None, frozenset[S]]:
    return {k: frozenset(v) for k, v in rows.items()}


class DossierState(StrEnum):
    """Life of a transfer dossier in the hub."""

    CONCEPT = "concept"  # pulled from the SIS, parts still being filled in
    DEEL_A_INGEVULD = "deel_a_ingevuld"  # student part done
    DEEL_B_INGEVULD = "deel_b_ingevuld"  # mentor part done, ready for inzage
    GOEDGEKEURD = "goedgekeurd"  # inzage + toestemming Ja by the right person
    GEWEIGERD = "geweigerd"  # toestemming Nee: the dossier never leaves
    IN_OUTBOX = "in_outbox"  # signed bytes queued with their MessageID
    VERZONDEN = "verzonden"  # handed to the transport
    AFGELEVERD = "afgeleverd"  # receipt from the mbo
    DEAD_LETTER = "dead_letter"  # permanently refused; replayable with the same MessageID
    INGETROKKEN = "ingetrokken"  # withdrawn by the school before delivery


_DOSSIER_ROWS: dict[DossierState | None, list[DossierState]] = {
    None: [DossierState.CONCEPT],
    DossierState.CONCEPT: [DossierState.DEEL_A_INGEVULD, DossierState.INGETROKKEN],
    DossierState.DEEL_A_INGEVULD: [DossierState.DEEL_B_INGEVULD, DossierState.INGETROKKEN],
    DossierState.DEEL_B_INGEVULD: [
        DossierState.GOEDGEKEURD,
        DossierState.GEWEIGERD,
        DossierState.INGETROKKEN,
    ],
    # A refusal can be reconsidered: inzage is given again and the dossier is approved.
    DossierState.GEWEIGERD: [DossierState.GOEDGEKEURD, DossierState.INGETROKKEN],
    DossierState.GOEDGEKEURD: [DossierState.IN_OUTBOX, DossierState.INGETROKKEN],
    DossierState.IN_OUTBOX: [DossierState.VERZONDEN, DossierState.DEAD_LETTER],
    # Sent but no receipt yet: a retry goes back to the outbox with the same MessageID.
    DossierState.VERZONDEN: [
        DossierState.AFGELEVERD,
        DossierState.IN_OUTBOX,
        DossierState.DEAD_LETTER,
    ],
    DossierState.DEAD_LETTER: [DossierState.IN_OUTBOX],
}
DOSSIER = StateMachine[DossierState]("dossier", _table(_DOSSIER_ROWS))


class RegistrationStatus(StrEnum):
    """Statuses the mbo reports for a registration (WEB art. 8.0.3, VVA flows)."""

    ONTVANGEN = "ontvangen"
    OVEREENKOMST_AANGEBODEN = "overeenkomst_aangeboden"
    INGESCHREVEN = "ingeschreven"
    NIET_TOT_INSCHRIJVING = "niet_tot_inschrijving"
    INGETROKKEN = "ingetrokken"
    # Deregistration after enrolment: not a registration status in the law, but the `uitval`
    # signal (DOMAIN.md) needs to know a student left mbo year 1.
    UITGESCHREVEN = "uitgeschreven"


_R = RegistrationStatus
_REGISTRATION_ROWS: dict[RegistrationStatus | None, list[RegistrationStatus]] = {
    # The first message may already be a later status: mbo systems report what they have, and an
    # earlier message can be lost. Forward skips are progress, not an error.
    # ingetrokken and uitgeschreven imply a registration (and an enrolment) before them: when
    # those reports are lost or still on their way (out-of-order delivery), the later status
    # is still forward progress (measured: a synthetic year shuffled produced both cases).
    None: [
        _R.ONTVANGEN,
        _R.OVEREENKOMST_AANGEBODEN,
        _R.INGESCHREVEN,
        _R.NIET_TOT_INSCHRIJVING,
        _R.INGETROKKEN,
        _R.UITGESCHREVEN,
    ],
    _R.ONTVANGEN: [
        _R.OVEREENKOMST_AANGEBODEN,
        _R.INGESCHREVEN,
        _R.NIET_TOT_INSCHRIJVING,
        _R.INGETROKKEN,
        _R.UITGESCHREVEN,
    ],
    _R.OVEREENKOMST_AANGEBODEN: [
        _R.INGESCHREVEN,
        _R.NIET_TOT_INSCHRIJVING,
        _R.INGETROKKEN,
        _R.UITGESCHREVEN,
    ],
    _R.INGESCHREVEN: [_R.UITGESCHREVEN],
}
REGISTRATION = StateMachine[RegistrationStatus]("registration", _table(_REGISTRATION_ROWS))

OPEN_REGISTRATION = frozenset({_R.ONTVANGEN, _R.OVEREENKOMST_AANGEBODEN})
"""Registrations still on their way to enrolment."""


class SignalState(StrEnum):
    RAISED = "raised"
    SENT = "sent"
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"


_SIGNAL_ROWS: dict[SignalState | None, list[SignalState]] = {
    None: [SignalState.RAISED],
    SignalState.RAISED: [SignalState.SENT, SignalState.WITHDRAWN],
    SignalState.SENT: [SignalState.DELIVERED, SignalState.WITHDRAWN],
    SignalState.DELIVERED: [SignalState.WITHDRAWN],
}
SIGNAL = StateMachine[SignalState]("signal", _table(_SIGNAL_ROWS))


class SignalKind(StrEnum):
    GEEN_AANMELDING = "geen_aanmelding"
    ZOMERLEK = "zomerlek"
    UITVAL = "uitval"
    AFGEWEZEN_ZONDER_ALTERNATIEF = "afgewezen_zonder_alternatief"
