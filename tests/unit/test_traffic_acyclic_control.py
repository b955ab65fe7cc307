"""Acyclic control's policy: extension while a green still serves, and walk greens that can
leave (controlled inputs, the applier on a memory port, judged by the independent oracle)."""

from __future__ import annotations

import math
from dataclasses import replace

from edge.traffic.acyclic import (
    PRODUCTION_POLICY,
    AcyclicPolicy,
    choose_green,
    for_junction,
    switch_margin,
)
from edge.traffic.applier import SafeApplier
from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.oracle import check_sequence
from tests.unit.traffic_fakes import MemoryPort, foes_never_green_together

EXTENDING = AcyclicPolicy(extend_load=2.0, extend_cap_s=50.0, turn_after_s=math.inf)


def test_a_green_still_serving_is_extended_up_to_its_cap_then_yields() -> None:
    waited = {0: 0.0, 2: 30.0}
    busy = {0: 2.5, 2: 9.0}  # the other phase outranks it by far, but 2.5 veh/lane remain
    assert choose_green(0, waited, busy, EXTENDING, forced=False, elapsed=20.0) is None
    assert choose_green(0, waited, busy, EXTENDING, forced=False, elapsed=50.0) == 2
    assert choose_green(0, waited, busy, EXTENDING, forced=True, elapsed=20.0) == 2


def test_a_green_down_to_a_trickle_yields_at_once() -> None:
    trickle = {0: 1.0, 2: 3.0}
    assert choose_green(0, {0: 0.0, 2: 30.0}, trickle, EXTENDING, forced=False, elapsed=8) == 2
    # without extension (the old policy) the busy green of the test above yielded at once
    plain = AcyclicPolicy(turn_after_s=math.inf)
    assert choose_green(0, {0: 0.0, 2: 30.0}, {0: 2.5, 2: 9.0}, plain, forced=False) == 2


def test_extension_never_beats_a_starving_phase() -> None:
    assert choose_green(0, {0: 0.0, 2: 130.0}, {0: 9.0, 2: 0.0}, EXTENDING, forced=False) == 2


def test_the_switch_margin_is_a_share_of_the_load_between_a_floor_and_the_full_margin() -> None:
    policy = AcyclicPolicy(turn_after_s=math.inf, relative_margin=0.2, margin_floor=0.5)
    plain = AcyclicPolicy(turn_after_s=math.inf)
    fresh = {0: 0.0, 2: 0.0}  # nobody has waited: no ageing, only the pressures
    # a light junction: 0.6 vs 1.3 veh/lane is worth a switch (margin 0.5, the floor) ...
    assert switch_margin(policy, 0.6, 1.3) == 0.5
    assert choose_green(0, fresh, {0: 0.6, 2: 1.3}, policy, forced=False) == 2
    assert choose_green(0, fresh, {0: 0.6, 2: 1.3}, plain, forced=False) is None
    # ... a loaded one needs nearly the full margin: 2.0 vs 2.9 is not (0.2 x 4.9 = 0.98)
    assert switch_margin(policy, 2.0, 2.9) == 0.2 * 4.9
    assert choose_green(0, fresh, {0: 2.0, 2: 2.9}, policy, forced=False) is None
    assert choose_green(0, fresh, {0: 2.0, 2: 3.1}, policy, forced=False) == 2
    # never above the plain margin, and a negative (gapped-out) priority adds nothing
    assert switch_margin(policy, 9.0, 9.0) == plain.switch_margin == 1.0
    assert switch_margin(policy, -1.0, 1.0) == 0.5


def test_production_policy_extends() -> None:
    assert PRODUCTION_POLICY.extend_load < math.inf and PRODUCTION_POLICY.extend_cap_s > 0


# netconvert --crossings.guess: walk green, the same green without the walk, yellow, twice over
CROSSING_PROGRAM = [
    PhaseDef.from_state("rrrgGGgrrrgGGgGrGr", 37),
    PhaseDef.from_state("rrrgGGgrrrgGGgrrrr", 5),
    PhaseDef.from_state("rrryyyyrrryyyyrrrr", 3),
    PhaseDef.from_state("gGgrrrrgGgrrrrrGrG", 37),
    PhaseDef.from_state("gGgrrrrgGgrrrrrrrr", 5),
    PhaseDef.from_state("yyyrrrryyyrrrrrrrr", 3),
]


def test_a_walk_green_outranked_leaves_through_its_follow_on_green_not_at_max_green() -> None:
    crossings = frozenset({14, 15, 16, 17})
    port = MemoryPort(CROSSING_PROGRAM, crossing_links=crossings)
    conflicts = ConflictMatrix.of(18, foes_never_green_together(CROSSING_PROGRAM).foes, crossings)
    safety = SignalSafety(max_plan_change_s=120)  # the plan's 7 s greens at once
    applier = SafeApplier(port, safety, PRODUCTION_POLICY, conflicts)
    applier.set_targets(dict.fromkeys(applier.green_phases, safety.min_green_s), "test")
    applier.set_priorities({0: 0.0, 1: 0.0, 3: 8.0, 4: 8.0}, "test")
    while port.now < 60:
        applier.step()
        port.now += 1.0
    phases = [applier.driven.origin(s.phase) for s in applier.switches]
    times = [s.time for s in applier.switches]
    assert phases[:5] == [0, 1, 2, 2, 3]  # walk green, its follow-on, yellow, all-red, green
    assert times[1] == 7.0  # the walk's minimum, then out (it used to run to max green, 83 s)
    assert check_sequence(port.shown, safety, conflicts, end_time=port.now, tolerance_s=1) == []


def _walk_junction(policy: AcyclicPolicy) -> list[int]:
    """The crossing program on a memory port: phase 0 serving 1.0, phase 3 1.6 veh/lane."""
    crossing_links = frozenset({14, 15, 16, 17})
    port = MemoryPort(CROSSING_PROGRAM, crossing_links=crossing_links)
    conflicts = ConflictMatrix.of(
        18, foes_never_green_together(CROSSING_PROGRAM).foes, crossing_links
    )
    safety = SignalSafety(max_plan_change_s=120)
    applier = SafeApplier(port, safety, policy, conflicts)
    applier.set_targets(dict.fromkeys(applier.green_phases, safety.min_green_s), "test")
    applier.set_priorities({0: 1.0, 1: 1.0, 3: 1.6, 4: 1.6}, "test")
    while port.now < 40:  # long past the minimum and the way through the change interval
        applier.step()
        port.now += 1.0
    assert check_sequence(port.shown, safety, conflicts, end_time=port.now, tolerance_s=1) == []
    return [applier.driven.origin(s.phase) for s in applier.switches]


def test_a_junction_with_walks_switches_on_the_walk_margin_one_without_keeps_the_full_one() -> None:
    policy = AcyclicPolicy(turn_after_s=math.inf, age_per_s=0.0, walk_switch_margin=0.5)
    assert for_junction(policy, has_walks=True).switch_margin == 0.5
    assert for_junction(policy, has_walks=False) == policy  # no walks: the full margin
    # the same walk junction and pressures: 1.6 outranks 1.0 by more than 0.5, less than 1
    assert 3 in _walk_junction(policy)
    assert 3 not in _walk_junction(replace(policy, walk_switch_margin=1.0))
