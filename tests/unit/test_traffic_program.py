"""The program the applier drives: which programs it refuses, and what it adds to them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from edge.traffic.program import (
    ProgramError,
    _jump_is_safe,
    clearance_paths,
    drive,
    follow_on_greens,
    validate_program,
)
from edge.traffic.signal_port import PhaseDef
from shared.traffic.conflicts import ConflictMatrix
from tests.unit.traffic_fakes import four_phase_program

pytestmark = pytest.mark.timeout(10)


def test_a_conflict_matrix_wider_than_the_program_is_refused_naming_both_widths() -> None:
    with pytest.raises(ProgramError, match=r"J7: its program has 8 links.*conflict matrix 9"):
        validate_program("J7", four_phase_program(), ConflictMatrix(9))


def test_a_matrix_as_wide_as_the_program_is_accepted() -> None:
    validate_program("J7", four_phase_program(), ConflictMatrix(8))


def test_an_empty_program_is_refused() -> None:
    with pytest.raises(ProgramError, match="J2: its signal program has no phases"):
        validate_program("J2", [], None)


def test_phases_of_different_widths_are_refused_naming_the_widths() -> None:
    program = [PhaseDef.from_state("GGr", 30), PhaseDef.from_state("yyrr", 4)]
    with pytest.raises(ProgramError, match=r"different lengths \[3, 4\]"):
        validate_program("J1", program, None)


def test_a_walk_signal_may_go_straight_to_dont_walk_but_a_road_link_after_it_may_not() -> None:
    # link 0 is a pedestrian crossing: green -> red without yellow is how a walk signal ends
    walk = [PhaseDef.from_state("GrG", 30), PhaseDef.from_state("rry", 4)]
    validate_program("J1", walk, ConflictMatrix.of(3, [], crossings=[0]))
    with pytest.raises(ProgramError, match="link 0 from green to red"):
        validate_program("J1", walk, None)  # without the network it is a road link
    # the crossing does not excuse the road link 1 that comes after it
    road = [PhaseDef.from_state("GGG", 30), PhaseDef.from_state("rry", 4)]
    with pytest.raises(ProgramError, match="link 1 from green to red"):
        validate_program("J1", road, ConflictMatrix.of(3, [], crossings=[0]))


def test_a_big_joined_controller_with_a_matching_network_is_accepted() -> None:
    # 300 links: widths beyond the few hundred small ints Python keeps once must compare too
    width = 300
    program = [
        PhaseDef.from_state("G" * width, 30),
        PhaseDef.from_state("y" * width, 4),
        PhaseDef.from_state("r" * width, 2),
    ]
    validate_program("J9", program, ConflictMatrix(width))
    with pytest.raises(ProgramError, match="300 links, the network's conflict matrix 301"):
        validate_program("J9", program, ConflictMatrix(width + 1))


def _as_read_from_a_file(program: list[PhaseDef]) -> list[PhaseDef]:
    """The same phases with kinds parsed from JSON: equal strings, not the interned literals."""
    rows = json.loads(json.dumps([[p.state, p.duration_s, p.kind] for p in program]))
    return [PhaseDef(state, d, d, d, kind) for state, d, kind in rows]


# a through green, its yellow, a protected left that follows it, its yellow and an all-red
CHAINED = [
    PhaseDef.from_state(state, d)
    for state, d in (
        ("GGrr", 30.0),
        ("GGGr", 10.0),
        ("yyyr", 4.0),
        ("rrrG", 20.0),
        ("rrry", 4.0),
        ("rrrr", 2.0),
    )
]


@pytest.mark.parametrize("program", [four_phase_program(), CHAINED], ids=["four", "chained"])
def test_a_program_read_from_a_file_is_driven_like_the_same_program_written_in_code(
    program: list[PhaseDef],
) -> None:
    parsed = _as_read_from_a_file(program)
    assert all(
        a.kind == b.kind and a.kind is not b.kind for a, b in zip(parsed, program, strict=True)
    )
    validate_program("J1", parsed, None)
    ours, theirs = drive(parsed, 2.0), drive(program, 2.0)
    assert [p.state for p in ours.phases] == [p.state for p in theirs.phases]
    assert ours.clearance_of == theirs.clearance_of
    assert ours.clearance_of  # the yellows did get their clearance phases
    duration = {i: p.duration_s for i, p in enumerate(program)}
    assert clearance_paths(parsed, duration.__getitem__) == clearance_paths(
        program, duration.__getitem__
    )
    assert follow_on_greens(parsed) == follow_on_greens(program)


def test_a_program_of_file_kinds_without_a_green_phase_is_refused() -> None:
    parsed = _as_read_from_a_file([PhaseDef.from_state("yy", 4.0), PhaseDef.from_state("rr", 2)])
    with pytest.raises(ProgramError, match="no green phase"):
        validate_program("J1", parsed, None)


def test_the_driven_program_cannot_be_changed_once_built() -> None:
    driven = drive(four_phase_program(), 2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        driven.own = 0  # type: ignore[misc]
    assert driven.origin(4) == 1  # the clearance phase after yellow 1 stands for it


def test_two_pairs_of_foes_green_together_are_reported_by_the_first_pair() -> None:
    program = [PhaseDef.from_state("GGGG", 30), PhaseDef.from_state("yyyy", 4)]
    conflicts = ConflictMatrix.of(4, [(0, 1), (2, 3)])
    with pytest.raises(ProgramError, match="links 0 and 1, which cross"):
        validate_program("J1", program, conflicts)


def test_green_to_red_without_yellow_is_found_after_any_phase() -> None:
    # the bad step leaves phase 1: every phase is checked against the one after it
    program = [PhaseDef.from_state(s, 10) for s in ("ry", "Gr", "rr")]
    with pytest.raises(ProgramError, match=r"phase 1 \(Gr\) -> phase 2 \(rr\)"):
        validate_program("J1", program, None)


@pytest.mark.parametrize(
    ("a", "b", "into_green", "safe"),
    [
        ("rrrr", "GGrr", True, True),  # from an all-red: red clearance already served
        ("yyrr", "GGrr", True, False),  # from a yellow: the clearance is still due
        ("GGyy", "yyrr", False, True),  # greens turn yellow, yellows turn red
        ("GGyy", "Gyrr", False, True),  # a green may stay green or turn yellow
        ("GGrr", "rrrr", False, False),  # a green may not go straight to red
        ("yyrr", "yyrr", False, False),  # a yellow may not start over
        ("yyrr", "GGrr", False, False),  # nor turn green
        ("rryy", "yyrr", False, False),  # a red link may not wake up
    ],
)
def test_a_jump_inside_the_clearance_keeps_every_yellow_and_red(
    a: str, b: str, into_green: bool, safe: bool
) -> None:
    assert _jump_is_safe(a, b, into_green) is safe


@pytest.mark.parametrize("scale", [1.0, 0.1], ids=["seconds", "tenths"])
def test_clearance_paths_of_a_chained_program_at_any_time_scale(scale: float) -> None:
    paths = clearance_paths(CHAINED, lambda i: CHAINED[i].duration_s * scale)
    assert paths == {
        (0, 1): [],  # the through green runs straight into the left turn's green
        (1, 3): [2],  # the program's own way: the yellow, then green 3
        (1, 0): [2, 5],  # back to green 0 only through the all-red
        (3, 0): [4, 5],
        (3, 1): [4, 5],  # green 1 skipped to from the all-red
    }


# from yellow 1 the controller may jump to the short all-red 5 instead of the long all-red 2
JUMPY = [
    PhaseDef.from_state(s, d)
    for s, d in (
        ("GGrr", 30.0),
        ("yyrr", 4.0),
        ("rrrr", 3.0),
        ("rrGG", 30.0),
        ("rryy", 4.0),
        ("rrrr", 1.0),
    )
]


@pytest.mark.parametrize("scale", [1.0, 0.1], ids=["seconds", "tenths"])
def test_clearance_paths_take_the_fastest_safe_chain_at_any_time_scale(scale: float) -> None:
    paths = clearance_paths(JUMPY, lambda i: JUMPY[i].duration_s * scale)
    assert paths == {(0, 3): [1, 5], (3, 0): [4, 5]}


def test_a_green_running_into_the_first_phase_over_the_wrap_needs_no_clearance() -> None:
    program = [PhaseDef.from_state(s, d) for s, d in (("GG", 30), ("yy", 4), ("rr", 2), ("Gr", 20))]
    assert clearance_paths(program, lambda i: program[i].duration_s) == {
        (0, 3): [1, 2],
        (3, 0): [],
    }


# a permissive left (g) in green 0, protected (G) in green 1 that follows it: a follow-on
FOLLOW = [
    PhaseDef.from_state(s, d)
    for s, d in (("Ggrr", 30), ("GGrr", 10), ("yyrr", 4), ("rrGG", 20), ("rryy", 4))
]


def test_a_green_continuing_the_movements_of_the_green_before_it_is_a_follow_on() -> None:
    assert follow_on_greens(FOLLOW) == {1: 0}
    assert follow_on_greens(_as_read_from_a_file(FOLLOW)) == {1: 0}


def test_a_two_green_program_has_no_follow_on_even_when_one_green_is_within_the_other() -> None:
    program = [PhaseDef.from_state(s, d) for s, d in (("GG", 30), ("Gy", 4), ("Gr", 20), ("yr", 4))]
    assert follow_on_greens(program) == {}
