"""The safe applier on a plain junction: plans are clamped, rate-limited, foreign ones refused."""

from __future__ import annotations

import itertools

import pytest

from edge.traffic.applier import (
    PlanRejectedError,
    SafeApplier,
    clearance_paths,
    follow_on_greens,
)
from edge.traffic.sequence_check import check_links, check_sequence
from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety
from shared.messages.traffic import PhaseGreen, SignalPlan
from tests.unit.traffic_fakes import MemoryPort, four_phase_program


def _run(applier: SafeApplier, port: MemoryPort, until: float) -> None:
    while port.now < until:
        applier.step()
        port.now += 1.0


def test_fixed_schedule_follows_the_program_in_order() -> None:
    port = MemoryPort(four_phase_program())
    applier = SafeApplier(port, SignalSafety())
    _run(applier, port, 140)
    phases = [s.phase for s in applier.switches]
    assert phases[:6] == [0, 1, 2, 3, 0, 1]
    times = [s.time for s in applier.switches]
    assert times[1] - times[0] == 31 and times[2] - times[1] == 4


def test_too_short_green_is_stretched_to_the_minimum_and_pedestrian_time() -> None:
    port = MemoryPort(four_phase_program(), crossings=frozenset({2}))
    safety = SignalSafety(min_green_s=8, pedestrian_min_s=15, max_plan_change_s=120)
    applier = SafeApplier(port, safety)
    applied = applier.set_targets({0: 1.0, 2: 1.0}, "cloud")
    assert applied == {0: 8.0, 2: 15.0}


def test_plan_changes_are_rate_limited_per_phase() -> None:
    port = MemoryPort(four_phase_program())
    applier = SafeApplier(port, SignalSafety(max_plan_change_s=5))
    assert applier.set_targets({0: 80.0, 2: 10.0}, "cloud") == {0: 36.0, 2: 26.0}
    assert applier.set_targets({0: 80.0}, "cloud") == {0: 41.0, 2: 26.0}


def test_short_yellow_in_the_program_is_lengthened() -> None:
    program = [
        PhaseDef.from_state("GGrr", 20),
        PhaseDef.from_state("yyrr", 1),
        PhaseDef.from_state("rrGG", 20),
        PhaseDef.from_state("rryy", 1),
    ]
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety(yellow_s=4))
    _run(applier, port, 100)
    switches = applier.switches
    yellows = [
        b.time - a.time
        for a, b in itertools.pairwise(switches[1:])
        if program[a.phase].kind == "yellow"
    ]
    assert yellows and all(y == 4 for y in yellows), yellows
    problems = check_sequence(
        program,
        [(s.time, s.phase) for s in switches],
        port.now,
        safety=SignalSafety(yellow_s=4),
        has_crossing=port.has_pedestrian_crossing,
        tolerance_s=1.0,
    )
    assert problems == []


def test_plan_for_another_junction_is_refused_with_its_name() -> None:
    applier = SafeApplier(MemoryPort(four_phase_program()), SignalSafety())
    plan = SignalPlan(
        sender="cloud",
        junction_id="B7",
        plan_id="p1",
        issued_at=0,
        expires_at=10,
        cycle_s=70,
        greens=[PhaseGreen(phase_index=0, green_s=30)],
    )
    with pytest.raises(PlanRejectedError, match="B7"):
        applier.greens_from_plan(plan)


def test_plan_naming_a_yellow_phase_is_refused() -> None:
    applier = SafeApplier(MemoryPort(four_phase_program()), SignalSafety())
    with pytest.raises(PlanRejectedError, match=r"\[1\]"):
        applier.set_targets({1: 30.0}, "cloud")


def test_checker_flags_a_skipped_yellow() -> None:
    program = four_phase_program()
    problems = check_sequence(
        program,
        [(0, 0), (30, 2), (60, 3)],
        70,
        safety=SignalSafety(),
        has_crossing=lambda _: False,
        tolerance_s=1,
    )
    assert any("program order" in p for p in problems)
    assert any("without yellow" in p for p in problems)


def grid_program() -> list[PhaseDef]:
    """netconvert's 4-arm junction with left-turn lanes (the twin's 4x4 grid)."""
    states = [
        ("GGGggrrrrrGGGggrrrrr", 29),
        ("yyyggrrrrryyyggrrrrr", 4),
        ("rrrGGrrrrrrrrGGrrrrr", 6),
        ("rrryyrrrrrrrryyrrrrr", 4),
        ("rrrrrrrrrrrrrrrrrrrr", 2),
        ("rrrrrGGGggrrrrrGGGgg", 29),
        ("rrrrryyyggrrrrryyygg", 4),
        ("rrrrrrrrGGrrrrrrrrGG", 6),
        ("rrrrrrrryyrrrrrrrryy", 4),
        ("rrrrrrrrrrrrrrrrrrrr", 2),
    ]
    return [PhaseDef.from_state(s, d) for s, d in states]


def three_way_program() -> list[PhaseDef]:
    """Three conflicting greens, each with its yellow and all-red."""
    out = []
    for k in range(3):
        green = "".join("G" if i == k else "r" for i in range(3))
        out += [
            PhaseDef.from_state(green, 20),
            PhaseDef.from_state(green.replace("G", "y"), 4),
            PhaseDef.from_state("rrr", 2),
        ]
    return out


def test_clearance_paths_keep_every_yellow_and_the_all_red() -> None:
    program = grid_program()
    paths = clearance_paths(program, lambda i: program[i].duration_s)
    # through -> other through skips the protected left: the lefts still get their yellow (3)
    assert paths[(0, 5)] == [1, 3, 4]
    assert paths[(2, 7)] == [3, 4]
    assert paths[(7, 2)][0] == 8 and set(program[paths[(7, 2)][-1]].state) == {"r"}
    assert follow_on_greens(program) == {2: 0, 7: 5}


def test_acyclic_applier_goes_to_the_highest_priority_phase_through_its_clearance() -> None:
    program = three_way_program()
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety())
    applier.set_priorities({0: 1.0, 3: 0.0, 6: 9.0}, "test")
    _run(applier, port, 60)
    phases = [s.phase for s in applier.switches]
    assert phases[:4] == [0, 1, 2, 6]  # phase 3 skipped, yellow and all-red kept
    switches = [(s.time, s.phase) for s in applier.switches]
    safety = SignalSafety()
    ok = check_sequence(
        program,
        switches,
        port.now,
        safety=safety,
        has_crossing=lambda _: False,
        tolerance_s=1,
        allow_skips=True,
    )
    assert ok == []


def test_checker_flags_a_jump_into_green_straight_from_yellow() -> None:
    problems = check_sequence(
        three_way_program(),
        [(0, 0), (30, 1), (34, 6), (60, 7)],
        70,
        safety=SignalSafety(),
        has_crossing=lambda _: False,
        tolerance_s=1,
        allow_skips=True,
    )
    assert any("without an all-red clearance" in p for p in problems)


def test_protected_left_runs_after_its_through_green_when_acyclic() -> None:
    program = grid_program()
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety())
    applier.set_priorities({0: 0.0, 2: 0.0, 5: 5.0, 7: 0.0}, "test")
    _run(applier, port, 120)
    phases = [s.phase for s in applier.switches]
    assert phases[:6] == [0, 1, 2, 3, 4, 5]


def test_acyclic_greens_on_the_grid_keep_every_link_within_max_green() -> None:
    program = grid_program()
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety())
    applier.set_priorities({0: 50.0, 2: 0.0, 5: 0.0, 7: 0.0}, "test")  # phase 0 wants it all
    _run(applier, port, 600)
    served = {s.phase for s in applier.switches}
    assert {0, 2, 5, 7} <= served  # the others still get their turn (they age)
    problems = check_sequence(
        program,
        [(s.time, s.phase) for s in applier.switches],
        port.now,
        safety=SignalSafety(),
        has_crossing=lambda _: False,
        tolerance_s=1,
        allow_skips=True,
    )
    assert problems == []
    assert _link_problems(program, applier, port) == []


def _link_problems(program: list[PhaseDef], applier: SafeApplier, port: MemoryPort) -> list[str]:
    return check_links(
        program,
        [(s.time, s.phase) for s in applier.switches],
        port.now,
        safety=applier.safety,
        has_crossing=port.has_pedestrian_crossing,
        tolerance_s=1,
    )


def test_long_through_green_is_cut_so_the_left_turn_run_after_it_stays_within_max_green() -> None:
    # The lefts are 'g' in the through green (0), stay 'g' in its yellow (1), then 'G' (2):
    # one continuous green of phase 0 + 4 s + phase 2.
    program = grid_program()
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety(max_plan_change_s=120))
    assert applier.set_targets({0: 90.0}, "cloud")[0] == 90.0
    _run(applier, port, 400)
    times = {}
    for a, b in itertools.pairwise(applier.switches):
        times[a.phase] = b.time - a.time  # the last complete one: after the plan
    assert times[0] == 90 - 4 - 7  # max green less the yellow and the protected left's minimum
    assert _link_problems(program, applier, port) == []


def test_fixed_grid_program_that_complies_runs_unchanged() -> None:
    program = grid_program()
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety(min_green_s=5))
    _run(applier, port, 300)
    lengths = [b.time - a.time for a, b in itertools.pairwise(applier.switches)]
    assert lengths[:10] == [p.duration_s for p in program]
    assert _link_problems(program, applier, port) == []


def test_checker_flags_a_link_green_across_two_phases_past_max_green() -> None:
    program = [
        PhaseDef.from_state("Gr", 50),
        PhaseDef.from_state("GG", 50),
        PhaseDef.from_state("yy", 4),
        PhaseDef.from_state("rr", 2),
    ]
    problems = check_links(
        program,
        [(0, 0), (50, 1), (100, 2), (104, 3)],
        110,
        safety=SignalSafety(max_green_s=90),
        has_crossing=lambda _: False,
        tolerance_s=1,
    )
    assert problems == ["link 0 green from t=0.0s to 100.0s (100.0s): green longer than 90.0s"]
