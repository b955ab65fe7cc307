"""The program the applier drives: which programs it refuses, and what it adds to them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from edge.traffic.program import (
    ProgramError,
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
