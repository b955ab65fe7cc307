"""Which phases of a network's program the applier may show: a phase that gives protected
green to two foes is left out when the rest still serves every link, and only then."""

from __future__ import annotations

import pytest

from edge.traffic.program import ProgramError, drivable_phases, validate_program
from edge.traffic.signal_port import PhaseDef
from shared.traffic.conflicts import ConflictMatrix

pytestmark = pytest.mark.timeout(10)

# Links: 0 east through, 1 east left, 2 west through, 3 west left. Each left crosses the
# opposite through; the two lefts pass within a vehicle's width, so they are foes too.
FOES = ConflictMatrix.of(4, [(1, 2), (0, 3), (1, 3)])


def _program(*states: str) -> list[PhaseDef]:
    return [PhaseDef.from_state(s, 3 if "y" in s else 20) for s in states]


# netconvert's shape for a divided road's joined cluster: throughs with permissive lefts,
# then both lefts protected together (the phase that releases two foes)
NETCONVERT = _program("GgGg", "ygyg", "rGrG", "ryry")


def test_a_phase_releasing_two_foes_together_is_left_out_when_the_lefts_keep_their_g() -> None:
    kept = drivable_phases(NETCONVERT, FOES)
    assert kept == [0, 1, 3]
    validate_program("J", [NETCONVERT[i] for i in kept], FOES)  # what is left is drivable


def test_the_program_with_that_phase_is_refused_naming_it() -> None:
    named = r"phase 2 \(rGrG\) gives protected green to links 1 and 3"
    with pytest.raises(ProgramError, match=named):
        validate_program("J", NETCONVERT, FOES)


def test_a_left_turn_green_only_in_the_unsafe_phase_keeps_the_whole_program() -> None:
    # without the permissive 'g' the lefts would never get green: nothing is left out, and
    # validate_program refuses the program, naming the phase
    starving = _program("GrGr", "yryr", "rGrG", "ryry")
    assert drivable_phases(starving, FOES) == [0, 1, 2, 3]


def test_a_rest_that_is_not_a_valid_program_keeps_the_whole_program() -> None:
    # without phase 1 the throughs would go from green straight to red
    broken = _program("GgGg", "rGrG", "ryry")
    assert drivable_phases(broken, FOES) == [0, 1, 2]


def test_a_safe_program_or_no_matrix_or_another_width_keeps_every_phase() -> None:
    safe = _program("GgGr", "ygyr", "rrrG", "rrry")
    assert drivable_phases(safe, FOES) == [0, 1, 2, 3]
    assert drivable_phases(NETCONVERT, None) == [0, 1, 2, 3]
    assert drivable_phases(NETCONVERT, ConflictMatrix.of(5, [(1, 3)])) == [0, 1, 2, 3]
