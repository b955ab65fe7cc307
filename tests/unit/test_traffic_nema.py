"""A NEMA dual ring is driven as the states its two rings show together, each green followed by
its yellow; a ring that names a phase the program lacks is refused with the phase named."""

from __future__ import annotations

import pytest

from shared.traffic.nema import NemaProgramError, RingPhase, ring_sides, written_out

EIGHT = {"ring1": "1,2,3,4", "ring2": "5,6,7,8", "barrierPhases": "4,8", "barrier2Phases": "2,6"}


def _one_link_each(names: list[str], width: int = 8) -> list[RingPhase]:
    """NEMA phase n lets link n-1 go: a movement per link, so the pairing reads off the state."""
    return [
        RingPhase(n, "".join("G" if i == int(n) - 1 else "r" for i in range(width)), 30, 5, 40)
        for n in names
    ]


def test_rings_split_at_their_barriers_and_skip_unused_slots() -> None:
    assert ring_sides("1,2,3,4", {"2", "4", "6", "8"}) == [["1", "2"], ["3", "4"]]
    assert ring_sides("0,2,0,4", {"2", "4"}) == [["2"], ["4"]]
    assert ring_sides("1,2,3,4", set()) == [["1", "2"], ["3", "4"]]  # no barrier: halves


def test_the_eight_phase_dual_ring_runs_lead_lead_pairs_each_with_its_yellow() -> None:
    program = written_out(_one_link_each([str(n) for n in range(1, 9)]), EIGHT)
    greens = [p.state for p in program if "y" not in p.state]
    assert greens == ["GrrrGrrr", "rGrrrGrr", "rrGrrrGr", "rrrGrrrG"]  # 1+5, 2+6, 3+7, 4+8
    yellows = [p.state for p in program if "y" in p.state]
    assert yellows == ["yrrryrrr", "ryrrryrr", "rryrrryr", "rrryrrry"]
    # every green is followed by the yellow of the links it ends
    assert [p.state for p in program[:2]] == ["GrrrGrrr", "yrrryrrr"]
    assert program[0].max_dur == 40 and program[0].min_dur == 5


def test_a_link_two_ring_phases_name_shows_the_stronger_green() -> None:
    phases = [
        RingPhase("2", "Ggrr", 30, 5, 40),
        RingPhase("6", "gGrr", 50, 8, 0),
        RingPhase("4", "rrGr", 30, 5, 40),
        RingPhase("8", "rrrG", 30, 5, 40),
    ]
    program = written_out(phases, {"ring1": "0,2,0,4", "ring2": "0,6,0,8"})
    assert [p.state for p in program] == ["GGrr", "yyrr", "rrGG", "rryy"]
    # the pair lasts as long as its longer phase (one without maxDur counts its duration)
    assert (program[0].min_dur, program[0].max_dur) == (8, 50)


def test_a_ring_naming_a_phase_the_program_lacks_is_refused_with_its_name() -> None:
    with pytest.raises(NemaProgramError, match=r"\['7'\]"):
        written_out(
            _one_link_each(["2", "4", "6", "8"]), {**EIGHT, "ring1": "0,2,0,4", "ring2": "0,6,7,8"}
        )
