"""The safe applier on a plain junction: plans are clamped, rate-limited, foreign ones refused."""

from __future__ import annotations

import itertools

import pytest

from edge.traffic.applier import PlanRejectedError, SafeApplier
from edge.traffic.sequence_check import check_sequence
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
