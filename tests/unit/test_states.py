"""The three state machines: allowed moves succeed, forbidden moves raise InvalidTransition.

The expected tables are written out here on purpose (not read from the module): a change to a
transition table must be a deliberate change to this file as well.
"""

from __future__ import annotations

from enum import StrEnum

import pytest

from overstap.domain.errors import InvalidTransition, OverstapError
from overstap.domain.states import (
    DOSSIER,
    OPEN_REGISTRATION,
    REGISTRATION,
    SIGNAL,
    DossierState,
    RegistrationStatus,
    SignalState,
    StateMachine,
)

D = DossierState
R = RegistrationStatus
S = SignalState

EXPECTED_DOSSIER: dict[DossierState | None, set[DossierState]] = {
    None: {D.CONCEPT},
    D.CONCEPT: {D.DEEL_A_INGEVULD, D.INGETROKKEN},
    D.DEEL_A_INGEVULD: {D.DEEL_B_INGEVULD, D.INGETROKKEN},
    D.DEEL_B_INGEVULD: {D.GOEDGEKEURD, D.GEWEIGERD, D.INGETROKKEN},
    D.GEWEIGERD: {D.GOEDGEKEURD, D.INGETROKKEN},
    D.GOEDGEKEURD: {D.IN_OUTBOX, D.INGETROKKEN},
    D.IN_OUTBOX: {D.VERZONDEN, D.DEAD_LETTER},
    D.VERZONDEN: {D.AFGELEVERD, D.IN_OUTBOX, D.DEAD_LETTER},
    D.DEAD_LETTER: {D.IN_OUTBOX},
    D.AFGELEVERD: set(),
    D.INGETROKKEN: set(),
}

EXPECTED_REGISTRATION: dict[RegistrationStatus | None, set[RegistrationStatus]] = {
    # A first message may already be a later status (an earlier message can be lost or late):
    # every forward skip is progress, up to a withdrawal or a deregistration.
    None: {
        R.ONTVANGEN,
        R.OVEREENKOMST_AANGEBODEN,
        R.INGESCHREVEN,
        R.NIET_TOT_INSCHRIJVING,
        R.INGETROKKEN,
        R.UITGESCHREVEN,
    },
    R.ONTVANGEN: {
        R.OVEREENKOMST_AANGEBODEN,
        R.INGESCHREVEN,
        R.NIET_TOT_INSCHRIJVING,
        R.INGETROKKEN,
        R.UITGESCHREVEN,
    },
    R.OVEREENKOMST_AANGEBODEN: {
        R.INGESCHREVEN,
        R.NIET_TOT_INSCHRIJVING,
        R.INGETROKKEN,
        R.UITGESCHREVEN,
    },
    R.INGESCHREVEN: {R.UITGESCHREVEN},
    R.NIET_TOT_INSCHRIJVING: set(),
    R.INGETROKKEN: set(),
    R.UITGESCHREVEN: set(),
}

EXPECTED_SIGNAL: dict[SignalState | None, set[SignalState]] = {
    None: {S.RAISED},
    S.RAISED: {S.SENT, S.WITHDRAWN},
    S.SENT: {S.DELIVERED, S.WITHDRAWN},
    S.DELIVERED: {S.WITHDRAWN},
    S.WITHDRAWN: set(),
}

CASES = [
    pytest.param(DOSSIER, EXPECTED_DOSSIER, id="dossier"),
    pytest.param(REGISTRATION, EXPECTED_REGISTRATION, id="registration"),
    pytest.param(SIGNAL, EXPECTED_SIGNAL, id="signal"),
]
Table = dict[StrEnum | None, set[StrEnum]]


def all_pairs(table: Table) -> list[tuple[StrEnum | None, StrEnum]]:
    states = [s for s in table if s is not None]
    return [(frm, to) for frm in table for to in states]


@pytest.mark.parametrize(("machine", "table"), CASES)
def test_every_allowed_transition_succeeds(machine: StateMachine[StrEnum], table: Table) -> None:
    count = 0
    for frm, targets in table.items():
        for to in targets:
            assert machine.can(frm, to), f"{frm} -> {to}"
            assert machine.transition(frm, to) is to
            count += 1
    assert count > 0


@pytest.mark.parametrize(("machine", "table"), CASES)
def test_every_other_transition_is_refused(machine: StateMachine[StrEnum], table: Table) -> None:
    refused = 0
    for frm, to in all_pairs(table):
        if to in table[frm]:
            continue
        assert not machine.can(frm, to), f"{frm} -> {to} should be refused"
        with pytest.raises(InvalidTransition):
            machine.transition(frm, to)
        refused += 1
    assert refused > 0


@pytest.mark.parametrize(("machine", "table"), CASES)
def test_machine_knows_exactly_the_enum_states(
    machine: StateMachine[StrEnum], table: Table
) -> None:
    enum_members = {s for s in table if s is not None}
    assert set(machine.states()) == enum_members
    assert enum_members == set(type(next(iter(enum_members))))  # every member is in the table


@pytest.mark.parametrize(("machine", "table"), CASES)
def test_every_state_reachable_from_new(machine: StateMachine[StrEnum], table: Table) -> None:
    seen: set[StrEnum] = set()
    frontier: list[StrEnum | None] = [None]
    while frontier:
        frm = frontier.pop()
        for to in machine.allowed.get(frm, frozenset()):
            if to not in seen:
                seen.add(to)
                frontier.append(to)
    assert seen == {s for s in table if s is not None}


@pytest.mark.parametrize(
    ("machine", "frm", "to"),
    [
        (REGISTRATION, R.INGESCHREVEN, R.ONTVANGEN),  # regression
        (REGISTRATION, R.INGESCHREVEN, R.OVEREENKOMST_AANGEBODEN),
        (REGISTRATION, R.OVEREENKOMST_AANGEBODEN, R.ONTVANGEN),
        (REGISTRATION, R.INGETROKKEN, R.ONTVANGEN),
        (REGISTRATION, R.INGETROKKEN, R.INGESCHREVEN),
        (REGISTRATION, R.NIET_TOT_INSCHRIJVING, R.INGESCHREVEN),
        (REGISTRATION, R.UITGESCHREVEN, R.INGESCHREVEN),
        (REGISTRATION, R.NIET_TOT_INSCHRIJVING, R.ONTVANGEN),
        (SIGNAL, S.WITHDRAWN, S.SENT),
        (SIGNAL, S.WITHDRAWN, S.RAISED),
        (SIGNAL, S.DELIVERED, S.SENT),
        (SIGNAL, None, S.SENT),
        (DOSSIER, D.CONCEPT, D.VERZONDEN),
        (DOSSIER, D.CONCEPT, D.GOEDGEKEURD),  # approval needs both parts first
        (DOSSIER, D.GEWEIGERD, D.IN_OUTBOX),  # a refused dossier never leaves
        (DOSSIER, D.AFGELEVERD, D.IN_OUTBOX),
        (DOSSIER, D.IN_OUTBOX, D.INGETROKKEN),  # too late: the bytes are queued
        (DOSSIER, None, D.GOEDGEKEURD),
    ],
)
def test_representative_forbidden_transitions(
    machine: StateMachine[StrEnum], frm: StrEnum | None, to: StrEnum
) -> None:
    with pytest.raises(InvalidTransition) as info:
        machine.transition(frm, to)
    assert info.value.machine == machine.name
    assert info.value.target is to


@pytest.mark.parametrize("target", list(R))
def test_ingetrokken_registration_is_final(target: RegistrationStatus) -> None:
    with pytest.raises(InvalidTransition):
        REGISTRATION.transition(R.INGETROKKEN, target)


def test_invalid_transition_message_names_machine_from_and_to() -> None:
    with pytest.raises(InvalidTransition) as info:
        REGISTRATION.transition(R.INGESCHREVEN, R.ONTVANGEN)
    assert str(info.value) == "registration: no transition from ingeschreven to ontvangen"
    assert (info.value.current, info.value.target) == (R.INGESCHREVEN, R.ONTVANGEN)
    assert isinstance(info.value, OverstapError)
    assert not isinstance(info.value, ValueError)  # a bug in the flow, not a bad record


def test_invalid_transition_from_nothing_says_new() -> None:
    with pytest.raises(InvalidTransition) as info:
        DOSSIER.transition(None, D.VERZONDEN)
    assert str(info.value) == "dossier: no transition from (new) to verzonden"


@pytest.mark.parametrize(
    ("machine", "finals"),
    [
        (DOSSIER, {D.AFGELEVERD, D.INGETROKKEN}),
        (REGISTRATION, {R.NIET_TOT_INSCHRIJVING, R.INGETROKKEN, R.UITGESCHREVEN}),
        (SIGNAL, {S.WITHDRAWN}),
    ],
)
def test_is_final(machine: StateMachine[StrEnum], finals: set[StrEnum]) -> None:
    for state in machine.states():
        assert machine.is_final(state) is (state in finals), state


def test_dead_letter_and_geweigerd_are_not_final() -> None:
    # dead letters are replayable, a refusal can be reconsidered
    assert not DOSSIER.is_final(D.DEAD_LETTER)
    assert not DOSSIER.is_final(D.GEWEIGERD)


def test_registration_has_the_domain_statuses() -> None:
    values = {s.value for s in RegistrationStatus}
    assert {
        "ontvangen",
        "overeenkomst_aangeboden",
        "ingeschreven",
        "niet_tot_inschrijving",
        "ingetrokken",
    } <= values
    # the one addition, for the uitval signal
    assert values - {
        "ontvangen",
        "overeenkomst_aangeboden",
        "ingeschreven",
        "niet_tot_inschrijving",
        "ingetrokken",
    } == {"uitgeschreven"}


def test_ingetrokken_reachable_from_every_non_final_status_except_ingeschreven() -> None:
    """DOMAIN.md: ingetrokken is possible "from any non-final state".

    The table's choice: `ingeschreven` is not final (it leads to `uitgeschreven`), but an
    enrolment is no longer a registration that can be withdrawn; leaving mbo after enrolment is
    `uitgeschreven`, which feeds the uitval signal. So the withdrawal is allowed from every
    non-final status except `ingeschreven`.
    """
    non_final = {s for s in REGISTRATION.states() if not REGISTRATION.is_final(s)}
    assert non_final == {R.ONTVANGEN, R.OVEREENKOMST_AANGEBODEN, R.INGESCHREVEN}
    for state in non_final - {R.INGESCHREVEN}:
        assert REGISTRATION.can(state, R.INGETROKKEN), state
    assert not REGISTRATION.can(R.INGESCHREVEN, R.INGETROKKEN)


def test_open_registration_statuses() -> None:
    assert {R.ONTVANGEN, R.OVEREENKOMST_AANGEBODEN} == OPEN_REGISTRATION
    for status in OPEN_REGISTRATION:
        assert REGISTRATION.can(status, R.INGESCHREVEN)


def test_signal_withdrawal_possible_until_final() -> None:
    for state in (S.RAISED, S.SENT, S.DELIVERED):
        assert SIGNAL.transition(state, S.WITHDRAWN) is S.WITHDRAWN


class _Light(StrEnum):
    GREEN = "green"
    RED = "red"
    OFF = "off"


def test_state_machine_final_with_explicit_empty_row() -> None:
    """A state listed with no targets is as final as a state with no row."""
    machine = StateMachine[_Light](
        "light",
        {
            None: frozenset({_Light.GREEN}),
            _Light.GREEN: frozenset({_Light.RED}),
            _Light.RED: frozenset(),
        },
    )
    assert machine.is_final(_Light.RED)
    assert machine.is_final(_Light.OFF)  # unknown to the table: nothing reachable from it
    assert not machine.is_final(_Light.GREEN)
    with pytest.raises(InvalidTransition, match="light: no transition from red to green"):
        machine.transition(_Light.RED, _Light.GREEN)
    assert list(machine.states()) == [_Light.GREEN, _Light.RED]
