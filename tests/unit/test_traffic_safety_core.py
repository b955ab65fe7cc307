"""The applier's safety core as pure functions, on small programs worked out by hand.

How long a link can stay green after a green (in program order, and over every way out the
acyclic applier may take), and the phase limits. Each walk here is bounded: a core that loops
forever must fail in seconds, not hang the suite.
"""

from __future__ import annotations

import json

import pytest

from edge.traffic.safety_clock import (
    ClearanceClock,
    max_green,
    min_green,
    program_order_tails,
    red_duration,
    worst_exits,
    yellow_duration,
)
from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety
from shared.traffic.conflicts import ConflictMatrix

pytestmark = pytest.mark.timeout(10)


def _program(*states: str) -> list[PhaseDef]:
    return [PhaseDef.from_state(s, 10.0) for s in states]


# Link 1, a left turn, keeps its green from green 4 through link 0's yellow and past the end of
# the program into green 0; link 3 is a right turn that is green ('g') in every phase.
ROTATED = _program("rGrg", "ryrg", "rrGg", "rryg", "GGrg", "yGrg")
# by phase index, as the applier's own: a walk that strays off the program finds no entry
SHORTEST = dict(enumerate([13.0, 5.0, 17.0, 7.0, 11.0, 3.0]))


def test_program_order_tail_is_the_time_a_link_stays_green_after_each_green() -> None:
    tails = program_order_tails(ROTATED, [0, 1, 2, 3], lambda i: SHORTEST[i])
    assert tails == {
        (0, 1): 0.0,  # its yellow comes next
        (0, 3): 5.0 + 17.0 + 7.0 + 11.0 + 3.0,  # always green: one lap, back to the start
        (2, 2): 0.0,
        (2, 3): 7.0 + 11.0 + 3.0 + 13.0 + 5.0,
        (4, 0): 0.0,
        (4, 1): 3.0 + 13.0,  # through phase 5, over the wrap into green 0, until its yellow
        (4, 3): 3.0 + 13.0 + 5.0 + 17.0 + 7.0,
    }


def test_program_order_tail_counts_only_greens_and_only_the_held_links() -> None:
    tails = program_order_tails(ROTATED, [1], lambda i: SHORTEST[i])
    assert tails == {(0, 1): 0.0, (4, 1): 16.0}  # yellows 1 and 5 are not greens


# Green 0 releases the through (link 0) and a permissive left (link 1). In program order the
# left goes on alone in green 2; the acyclic applier may instead jump from yellow 1 to green 4,
# where the left is green too, and that green lasts longer.
SKIPPING = _program("GGr", "yGr", "rGr", "ryr", "rGG", "ryy")
SKIP_PATHS = {(0, 4): [1]}
SKIP_SHORTEST = {1: 4.0, 3: 5.0, 5: 6.0}
SKIP_FLOOR = {0: 10.0, 2: 20.0, 4: 30.0}


def _skipping_exits(paths: dict[tuple[int, int], list[int]]) -> dict[tuple[int, int], float]:
    return worst_exits(
        SKIPPING,
        [0, 1, 2],
        paths,
        shortest=lambda i: SKIP_SHORTEST[i],
        floor=lambda i: SKIP_FLOOR[i],
        max_green_s=90.0,
    )


def test_worst_exit_takes_the_longest_way_out_over_the_clearance_paths() -> None:
    assert _skipping_exits(SKIP_PATHS) == {
        (0, 0): 0.0,  # the through's yellow comes next
        (0, 1): 4.0 + 30.0,  # through yellow 1, then green 4 at its minimum
        (2, 1): 0.0,
        (4, 1): 0.0,
        (4, 2): 0.0,
    }


def test_worst_exit_without_clearance_paths_follows_the_program_order() -> None:
    exits = _skipping_exits({})
    assert exits[(0, 1)] == 4.0 + 20.0  # through yellow 1, then green 2 at its minimum
    assert exits[(0, 0)] == 0.0


def test_worst_exit_ignores_a_way_out_where_the_link_turns_yellow_on_the_way() -> None:
    # from green 2 straight through yellow 3 (the left turns yellow) to green 4
    exits = _skipping_exits({**SKIP_PATHS, (2, 4): [3]})
    assert exits[(2, 1)] == 0.0


def test_worst_exit_of_a_link_that_can_stay_green_all_the_way_round_is_at_least_max_green() -> None:
    # link 0 is green in every phase: after green 0 it can run forever, so at least max green;
    # link 1 joins in green 1 and its yellow ends it
    program = _program("Gr", "GG", "Gy")
    exits = worst_exits(
        program,
        [0, 1],
        {},
        shortest=lambda i: 3.0,
        floor=lambda i: {0: 10.0, 1: 20.0}[i],
        max_green_s=90.0,
    )
    assert set(exits) == {(0, 0), (1, 0), (1, 1)}
    assert exits[(0, 0)] >= 90.0
    assert exits[(1, 0)] >= 90.0
    assert exits[(1, 1)] == 0.0


@pytest.mark.parametrize(
    ("crossing", "minimum", "maximum"),
    [
        (False, 7.0, 40.0),  # no walk: the configured limits
        (True, 12.0, 40.0),  # a walk of 12 s lengthens the minimum
    ],
)
def test_green_limits_with_and_without_a_crossing(
    crossing: bool, minimum: float, maximum: float
) -> None:
    safety = SignalSafety(min_green_s=7, max_green_s=40, pedestrian_min_s=12)
    assert min_green(safety, crossing) == minimum
    assert max_green(safety, crossing) == maximum


def test_a_walk_longer_than_max_green_raises_the_maximum_to_the_walk() -> None:
    safety = SignalSafety(min_green_s=7, max_green_s=20, pedestrian_min_s=30)
    assert (min_green(safety, True), max_green(safety, True)) == (30.0, 30.0)
    assert (min_green(safety, False), max_green(safety, False)) == (7.0, 20.0)


@pytest.mark.parametrize(
    ("programmed", "yellow"),
    [(0.0, 4.0), (3.0, 4.0), (4.0, 4.0), (5.5, 5.5), (60.0, 6.0)],
)
def test_yellow_is_at_least_the_configured_yellow_and_at_most_the_legal_maximum(
    programmed: float, yellow: float
) -> None:
    assert yellow_duration(SignalSafety(yellow_s=4), programmed) == yellow


@pytest.mark.parametrize(("programmed", "red"), [(0.0, 2.0), (2.0, 2.0), (3.5, 3.5)])
def test_red_clearance_is_at_least_all_red(programmed: float, red: float) -> None:
    assert red_duration(SignalSafety(all_red_s=2), programmed) == red


def test_worst_exit_stops_counting_where_the_link_leaves_green_even_if_a_later_phase_shows_it():
    # a way out whose first phase already shows link 0 yellow: whatever comes after, its green
    # ended there
    program = _program("Gr", "yr", "rG", "Gy")
    exits = worst_exits(
        program,
        [0],
        {(0, 2): [1, 3]},
        shortest=lambda i: 3.0,
        floor=lambda i: 10.0,
        max_green_s=90.0,
    )
    assert exits == {(0, 0): 0.0}


def test_clearance_left_of_exactly_the_clock_resolution_counts_as_none() -> None:
    clock = ClearanceClock(2, 1e-6, ConflictMatrix(2, foes=frozenset({(0, 1)})))
    clock.show("yr", -4.0)
    clock.show("rr", 0.0)  # link 0's yellow ends at 0: 1e-6 s of clearance owed, the resolution
    assert clock.wait_s("rG", 0.0) == 0.0


def test_clock_refuses_a_state_of_another_width_instead_of_comparing_part_of_it() -> None:
    clock = ClearanceClock(2, 2.0, ConflictMatrix(2, foes=frozenset({(0, 1)})))
    clock.show("Gr", 0.0)
    with pytest.raises(ValueError, match="zip"):
        clock.wait_s("rGG", 5.0)


def _as_read_from_a_file(program: list[PhaseDef]) -> list[PhaseDef]:
    """The same phases with kinds parsed from JSON: equal strings, not the interned literals."""
    rows = json.loads(json.dumps([[p.state, p.duration_s, p.kind] for p in program]))
    return [PhaseDef(state, d, d, d, kind) for state, d, kind in rows]


def test_a_program_read_from_a_file_gets_the_same_limits_as_one_written_in_code() -> None:
    parsed = _as_read_from_a_file(SKIPPING)
    assert all(
        a.kind == b.kind and a.kind is not b.kind for a, b in zip(parsed, SKIPPING, strict=True)
    )
    held = [0, 1, 2]
    assert program_order_tails(parsed, held, lambda i: 1.0) == program_order_tails(
        SKIPPING, held, lambda i: 1.0
    )
    for paths in ({}, SKIP_PATHS):
        assert worst_exits(
            parsed,
            held,
            paths,
            shortest=lambda i: SKIP_SHORTEST[i],
            floor=lambda i: SKIP_FLOOR[i],
            max_green_s=90.0,
        ) == _skipping_exits(paths)


def test_a_links_own_yellow_never_holds_back_its_next_green_however_many_links() -> None:
    # a big joined controller: 300 links, no conflict matrix, so every other link is a foe
    clock = ClearanceClock(300, 2.0, None)
    last = 299
    clock.show("r" * last + "y", 0.0)
    clock.show("r" * 300, 4.0)  # link 299's own yellow ended at 4
    assert clock.wait_s("r" * last + "G", 5.0) == 0.0
    assert clock.wait_s("G" + "r" * last, 5.0) == pytest.approx(1.0)  # a foe waits it out


# The program starts on a yellow, so its greens sit at odd indexes: 1 and 3. Link 0 keeps its
# green from green 1 through link 1's yellow (phase 2) into green 3.
ODD = _program("yr", "GG", "Gy", "Gr", "yr")
ODD_SHORTEST = [1.0, 2.0, 3.0, 4.0, 5.0]


def test_program_order_tail_starts_at_the_phase_after_the_green_wherever_the_green_sits() -> None:
    tails = program_order_tails(ODD, [0, 1], lambda i: ODD_SHORTEST[i])
    assert tails == {(1, 0): 3.0 + 4.0, (1, 1): 0.0, (3, 0): 0.0}


def test_worst_exit_walks_from_the_phase_after_the_green_wherever_the_green_sits() -> None:
    exits = worst_exits(
        ODD,
        [0, 1],
        {},
        shortest=lambda i: ODD_SHORTEST[i],
        floor=lambda i: {1: 10.0, 3: 20.0}[i],
        max_green_s=90.0,
    )
    assert exits == {(1, 0): 3.0 + 20.0, (1, 1): 0.0, (3, 0): 0.0}


def test_worst_exit_takes_its_two_time_functions_and_the_limit_by_name_only() -> None:
    # shortest and floor have the same type: by position they could be swapped unnoticed
    with pytest.raises(TypeError):
        worst_exits(ODD, [0], {}, lambda i: 1.0, lambda i: 1.0, 90.0)  # type: ignore[call-arg]


def test_before_any_yellow_has_ended_no_clearance_is_owed() -> None:
    clock = ClearanceClock(2, 2.0, ConflictMatrix(2, foes=frozenset({(0, 1)})))
    clock.show("rr", 0.0)
    assert clock.wait_s("Gr", 0.5) == 0.0
