"""The safe applier on a plain junction: plans are clamped, rate-limited, foreign ones refused."""

from __future__ import annotations

import itertools
import math

import pytest

from edge.traffic.acyclic import PRODUCTION_POLICY
from edge.traffic.applier import (
    AcyclicPolicy,
    PlanRejectedError,
    SafeApplier,
)
from edge.traffic.program import ProgramError, clearance_paths, follow_on_greens
from edge.traffic.safety_clock import ClearanceClock, worst_exits
from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety
from shared.messages.traffic import PhaseGreen, SignalPlan
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.oracle import Violation, check_sequence
from tests.unit.traffic_fakes import MemoryPort, foes_never_green_together, four_phase_program


def _oracle(port: MemoryPort, safety: SignalSafety) -> list[Violation]:
    """What the independent oracle says of every state the port showed."""
    conflicts = foes_never_green_together(port.phases())
    return check_sequence(port.shown, safety, conflicts, end_time=port.now, tolerance_s=1.0)


def _run(applier: SafeApplier, port: MemoryPort, until: float) -> None:
    while port.now < until:
        applier.step()
        port.now += 1.0


def test_fixed_schedule_follows_the_program_in_order() -> None:
    port = MemoryPort(four_phase_program())
    applier = SafeApplier(port, SignalSafety())
    _run(applier, port, 140)
    phases = [applier.driven.origin(s.phase) for s in applier.switches]
    # each yellow is followed by its red clearance (the program has none of its own)
    assert phases[:9] == [0, 1, 1, 2, 3, 3, 0, 1, 1]
    times = [s.time for s in applier.switches]
    assert times[1] - times[0] == 31 and times[2] - times[1] == 4 and times[3] - times[2] == 2
    assert _oracle(port, SignalSafety()) == []


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
        if applier.driven.phases[a.phase].kind == "yellow"
    ]
    assert yellows and all(y == 4 for y in yellows), yellows
    assert _oracle(port, SignalSafety(yellow_s=4)) == []


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


def test_oracle_flags_a_skipped_yellow() -> None:
    program = four_phase_program()
    shown = [(0.0, program[0].state), (30.0, program[2].state), (60.0, program[3].state)]
    kinds = {v.kind for v in check_sequence(shown, SignalSafety(), end_time=70)}
    assert "green_to_red" in kinds


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
    assert _oracle(port, SignalSafety()) == []


def test_oracle_flags_a_jump_into_green_straight_from_yellow() -> None:
    program = three_way_program()
    shown = [
        (0.0, program[i].state) if i == 0 else (t, program[i].state)
        for t, i in [(0.0, 0), (30.0, 1), (34.0, 6), (60.0, 7)]
    ]
    conflicts = foes_never_green_together(program)
    kinds = [v.kind for v in check_sequence(shown, SignalSafety(), conflicts, end_time=70)]
    assert kinds == ["no_red_clearance"]


def test_protected_left_runs_after_its_through_green_when_acyclic() -> None:
    program = grid_program()
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety(), AcyclicPolicy())  # protected turns kept
    applier.set_priorities({0: 0.0, 2: 0.0, 5: 5.0, 7: 0.0}, "test")
    _run(applier, port, 120)
    phases = [s.phase for s in applier.switches]
    assert phases[:6] == [0, 1, 2, 3, 4, 5]


def test_acyclic_greens_on_the_grid_keep_every_link_within_max_green() -> None:
    program = grid_program()
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety(), AcyclicPolicy())  # protected turns kept
    applier.set_priorities({0: 50.0, 2: 0.0, 5: 0.0, 7: 0.0}, "test")  # phase 0 wants it all
    _run(applier, port, 600)
    served = {s.phase for s in applier.switches}
    assert {0, 2, 5, 7} <= served  # the others still get their turn (they age)
    assert _oracle(port, SignalSafety()) == []


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
    assert _oracle(port, applier.safety) == []


def test_fixed_grid_program_that_complies_runs_unchanged() -> None:
    program = grid_program()
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety(min_green_s=5))
    _run(applier, port, 300)
    lengths = [b.time - a.time for a, b in itertools.pairwise(applier.switches)]
    assert lengths[:10] == [p.duration_s for p in program]
    assert _oracle(port, applier.safety) == []


def test_oracle_flags_a_link_green_across_two_phases_past_max_green() -> None:
    shown = [(0.0, "Gr"), (50.0, "GG"), (100.0, "yy"), (104.0, "rr")]
    violations = check_sequence(shown, SignalSafety(max_green_s=90), end_time=110)
    assert [(v.kind, v.link) for v in violations] == [("long_green", 0)]


def test_pedestrian_green_lasts_the_walk_time_even_when_outranked() -> None:
    # link 0 is a crossing walked in phase 0; phase 2 wants the junction badly from the start
    program = four_phase_program()
    safety = SignalSafety(min_green_s=7, pedestrian_min_s=25)
    port = MemoryPort(program, crossing_links=frozenset({0}))
    conflicts = ConflictMatrix.of(8, foes_never_green_together(program).foes, {0})
    applier = SafeApplier(port, safety, conflicts=conflicts)
    applier.set_targets(dict.fromkeys(applier.green_phases, safety.min_green_s), "actuated")
    applier.set_priorities({0: 0.0, 2: 50.0}, "actuated")
    _run(applier, port, 60)
    assert applier.switches[1].time == 25.0  # the walk time, not the 7 s vehicle minimum
    assert check_sequence(port.shown, safety, conflicts, end_time=port.now, tolerance_s=1) == []


def test_red_clearance_is_inserted_between_foes_where_the_program_has_none() -> None:
    program = four_phase_program()  # yellow -> conflicting green, no all-red of its own
    safety = SignalSafety(all_red_s=3)
    port = MemoryPort(program)
    applier = SafeApplier(port, safety, conflicts=foes_never_green_together(program))
    _run(applier, port, 150)
    states = [s for _, s in port.shown]
    assert states[:5] == ["GGrrGGrr", "yyrryyrr", "rrrrrrrr", "rrGGrrGG", "rryyrryy"]
    times = [t for t, _ in port.shown]
    assert times[3] - times[2] == 3  # all_red_s, on the clearance the applier added
    assert _oracle(port, safety) == []


def test_no_clearance_is_added_between_links_that_do_not_conflict() -> None:
    program = four_phase_program()
    port = MemoryPort(program)
    applier = SafeApplier(port, SignalSafety(), conflicts=ConflictMatrix.of(8, []))
    _run(applier, port, 100)
    assert [s for _, s in port.shown][:3] == ["GGrrGGrr", "yyrryyrr", "rrGGrrGG"]


def test_program_releasing_two_foes_together_is_refused_naming_the_phase() -> None:
    program = [
        *four_phase_program()[:2],
        PhaseDef.from_state("rrGGrrGG", 31),
        PhaseDef.from_state("rryyrryy", 4),
        PhaseDef.from_state("rrrrrrrr", 2),
        PhaseDef.from_state("GrrrrrGr", 20),  # a left turn across the oncoming through
        PhaseDef.from_state("yrrrrryr", 4),
    ]
    conflicts = ConflictMatrix.of(8, [(0, 6)])
    with pytest.raises(ProgramError, match=r"phase 5 \(GrrrrrGr\).*links 0 and 6"):
        SafeApplier(MemoryPort(program), SignalSafety(), conflicts=conflicts)


def test_program_going_from_green_to_red_without_yellow_is_refused_naming_the_phase() -> None:
    program = [PhaseDef.from_state("GGrr", 30), PhaseDef.from_state("rrGG", 30)]
    with pytest.raises(ProgramError, match=r"phase 0 \(GGrr\) -> phase 1 \(rrGG\).*link 0"):
        SafeApplier(MemoryPort(program), SignalSafety())


def test_program_starting_a_green_while_a_foe_is_yellow_is_refused_naming_the_phase() -> None:
    # one of SUMO's Ingolstadt timing plans ends a turn's green and starts the crossing turn's
    # in one phase ("rrrrygrrrrrrr"): no red clearance fits inside a phase
    states = ("Grr", "ygr", "rGr", "ryr", "rrG", "rry")
    program = [PhaseDef.from_state(s, 4 if "y" in s else 30) for s in states]
    conflicts = ConflictMatrix.of(3, [(0, 1)])
    with pytest.raises(ProgramError, match=r"phase 1 \(ygr\).*link 1's green while its foe 0"):
        SafeApplier(MemoryPort(program), SignalSafety(), conflicts=conflicts)


def test_program_that_does_not_match_the_network_is_refused() -> None:
    with pytest.raises(ProgramError, match=r"8 links.*conflict matrix 6"):
        SafeApplier(MemoryPort(four_phase_program()), SignalSafety(), conflicts=ConflictMatrix(6))


def test_plan_asking_past_max_green_gets_max_green_and_a_walk_needing_more_gets_the_walk() -> None:
    port = MemoryPort(four_phase_program(), crossings=frozenset({2}))
    safety = SignalSafety(max_green_s=20, pedestrian_min_s=30, max_plan_change_s=120)
    applier = SafeApplier(port, safety)
    assert applier.set_targets({0: 500.0, 2: 25.0}, "cloud") == {0: 20.0, 2: 30.0}


def test_applier_follows_a_controller_switched_behind_its_back_and_times_it_from_then() -> None:
    port = MemoryPort(four_phase_program())
    safety = SignalSafety(min_green_s=10)
    applier = SafeApplier(port, safety)
    applier.set_targets({0: 10.0, 2: 10.0}, "cloud")
    _run(applier, port, 5)
    port._phase = 2  # someone at the cabinet
    _run(applier, port, 40)
    follow = applier.switches[1]
    assert (follow.time, follow.phase) == (5.0, 2)
    assert applier.switches[2].time - follow.time >= safety.min_green_s  # a full minimum
    assert applier.program_phase == applier.driven.origin(applier.phase)


def test_cycles_settle_on_the_plans_offset() -> None:
    # 31 + 4 + 2 (added red clearance) + 31 + 4 + 2 = a 74 s cycle, asked to start at 10 s
    port = MemoryPort(four_phase_program())
    applier = SafeApplier(port, SignalSafety())
    applier.set_targets({0: 31.0, 2: 31.0}, "plan", alignment=(74.0, 10.0))
    _run(applier, port, 1000)
    starts = [s.time for s in applier.switches if s.phase == 0][1:]
    assert starts[-1] % 74.0 == 10.0 and starts[-2] % 74.0 == 10.0
    assert starts[0] % 74.0 != 10.0  # it really moved: the first cycle began off the offset


def test_priorities_for_a_phase_that_is_not_green_are_refused() -> None:
    applier = SafeApplier(MemoryPort(four_phase_program()), SignalSafety())
    with pytest.raises(PlanRejectedError, match=r"phases \[1\] are not green"):
        applier.set_priorities({0: 1.0, 1: 5.0}, "cloud")


def test_acyclic_green_that_still_outranks_the_rest_runs_to_max_green() -> None:
    port = MemoryPort(four_phase_program())
    applier = SafeApplier(port, SignalSafety(max_green_s=60))
    applier.set_targets({0: 7.0, 2: 7.0}, "actuated")
    applier.set_priorities({0: 50.0, 2: 0.0}, "actuated")
    _run(applier, port, 100)
    assert applier.switches[1].time == 60.0  # not at its 7 s slot: nothing outranked it


# ---- the red-clearance clock on its own ----


def test_clearance_runs_from_the_end_of_a_foes_yellow_and_a_red_that_stays_red_restarts_nothing():
    clock = ClearanceClock(2, 2.0, ConflictMatrix(2, foes=frozenset({(0, 1)})))
    clock.show("Gr", 0.0)
    clock.show("yr", 10.0)
    clock.show("rr", 14.0)  # link 0's yellow ends here
    assert clock.wait_s("rG", 15.0) == pytest.approx(1.0)
    clock.show("rr", 20.0)  # still red: no yellow ended, so no new clearance is owed
    assert clock.wait_s("rG", 20.0) == 0.0


def test_clearance_is_owed_only_to_foes_and_a_spent_clearance_is_exactly_zero():
    clock = ClearanceClock(3, 2.0, ConflictMatrix(3, foes=frozenset({(0, 1)})))
    clock.show("Grr", 0.0)
    clock.show("yrr", 10.0)
    clock.show("rrr", 14.0)
    assert clock.wait_s("rrG", 14.0) == 0.0  # link 2 does not cross link 0
    assert clock.wait_s("rGr", 14.0) == pytest.approx(2.0)
    assert clock.wait_s("rGr", 16.0 - 1e-9) == 0.0  # what is left is below the clock's resolution


def test_a_state_showing_a_foe_yellow_is_never_shown_by_turning_a_link_green():
    clock = ClearanceClock(3, 2.0, ConflictMatrix(3, foes=frozenset({(0, 1)})))
    clock.show("Grr", 0.0)
    clock.show("yrr", 10.0)
    assert clock.wait_s("yGr", 100.0) == math.inf  # however long the yellow has shown
    assert clock.wait_s("yrG", 10.0) == 0.0  # link 2 is no foe of link 0


def test_worst_exit_follows_the_program_forward_through_a_phase_where_the_link_stays_green():
    # link 0 stays green through link 1's yellow into the next green, then its own yellow ends it
    program = [PhaseDef.from_state(state, 10.0) for state in ("GG", "Gy", "Gr", "yr", "rr")]
    exits = worst_exits(
        program, [0], {}, shortest=lambda i: 5.0, floor=lambda i: 7.0, max_green_s=60.0
    )
    assert exits[(0, 0)] == pytest.approx(5.0 + 7.0)  # through the yellow phase, then one green
    assert exits[(2, 0)] == 0.0  # its own yellow follows: nothing more


def test_a_protected_turn_begun_on_the_programs_time_ends_on_the_plans_once_plans_arrive() -> None:
    # A follow-on turn the gateway began under the program's own timing (at start-up, or after
    # a spell of fallback) ran that whole time though every plan since asked for the minimum:
    # SUMO's bs3d example programs 90 s greens, and its first turn phase held the junction 90 s.
    program = grid_program()
    program[2] = PhaseDef.from_state(program[2].state, 80.0)
    port = MemoryPort(program, start_phase=2)
    applier = SafeApplier(port, SignalSafety(), PRODUCTION_POLICY)
    while port.now < 60:
        if port.now >= 10 and port.now % 5 == 0:  # a plan every 5 s from t=10
            applier.set_targets(dict.fromkeys(applier.green_phases, 7.0), "plan")
            applier.set_priorities({0: 5.0, 2: 0.0, 5: 5.0, 7: 0.0}, "plan")
        applier.step()
        port.now += 1.0
    left_at = next(s.time for s in applier.switches if s.phase != 2)
    assert 10 < left_at <= 30  # the rate limit takes 15 s off per plan: 80 -> 7 by t=30
    assert _oracle(port, SignalSafety()) == []
