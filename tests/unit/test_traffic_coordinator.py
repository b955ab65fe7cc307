"""The coordinator: pressure-based greens from all junctions' counts, plans with an expiry."""

from __future__ import annotations

from typing import Any

import pytest

from cloud.traffic.coordinator import Coordinator, CoordinatorSettings
from cloud.traffic.service import CoordinatorCore
from cloud.traffic.topology import (
    ApproachTopo,
    JunctionTopo,
    LinkTopo,
    NetworkTopology,
    PhaseTopo,
)
from shared import topics
from shared.config.traffic import SignalSafety
from shared.messages.base import decode
from shared.messages.traffic import ApproachCount, PhaseGreen, SignalPlan, TrafficAggregate

PHASES = (
    PhaseTopo("GGrr", 30, "green"),  # links 0,1: west and east approaches
    PhaseTopo("yyrr", 4, "yellow"),
    PhaseTopo("rrGG", 30, "green"),  # links 2,3: north and south approaches
    PhaseTopo("rryy", 4, "yellow"),
)


def _junction(jid: str, west_edge: str, east_out: str) -> JunctionTopo:
    return JunctionTopo(
        jid,
        (
            ApproachTopo("west", west_edge),
            ApproachTopo("east", f"{jid}_e_in"),
            ApproachTopo("north", f"{jid}_n_in"),
            ApproachTopo("south", f"{jid}_s_in"),
        ),
        (
            LinkTopo(0, "west", east_out),
            LinkTopo(1, "east", f"{jid}_w_out"),
            LinkTopo(2, "north", f"{jid}_s_out"),
            LinkTopo(3, "south", f"{jid}_n_out"),
        ),
        PHASES,
    )


def _line() -> NetworkTopology:
    """A -> B along an arterial: A's eastbound exit is B's west approach."""
    return NetworkTopology({"A": _junction("A", "A_w_in", "AB"), "B": _junction("B", "AB", "B_e")})


def _agg(jid: str, at: float, queues: dict[str, float], healthy: bool = True) -> TrafficAggregate:
    return TrafficAggregate(
        sender=jid,
        junction_id=jid,
        interval_start=at - 5,
        interval_s=5,
        approaches=[
            ApproachCount(
                approach_id=a, queue=q, approaching=0, camera_healthy=healthy or a != "north"
            )
            for a, q in queues.items()
        ],
        mode="coordinated",
    )


QUIET = {"west": 0.0, "east": 0.0, "north": 0.0, "south": 0.0}


def _greens(plans: list[SignalPlan], jid: str) -> dict[int, float]:
    plan = next(p for p in plans if p.junction_id == jid)
    return {g.phase_index: g.green_s for g in plan.greens}


def test_longer_queue_gets_longer_green_and_plans_expire() -> None:
    cyclic = CoordinatorSettings(plan_ttl_s=15, max_pressure=False)
    c = Coordinator(_line(), SignalSafety(), cyclic)
    c.add(_agg("A", 100, {**QUIET, "west": 8, "north": 1}))
    plans = c.plans(100)
    greens = _greens(plans, "A")
    assert greens[0] > greens[2] >= SignalSafety().min_green_s
    assert all(p.expires_at == 115 and p.issued_at == 100 for p in plans)


def test_only_junctions_with_fresh_counts_get_plans() -> None:
    c = Coordinator(_line(), settings=CoordinatorSettings(stale_after_s=12))
    c.add(_agg("A", 100, QUIET))
    c.add(_agg("B", 80, QUIET))
    assert [p.junction_id for p in c.plans(100)] == ["A"]


def test_congested_downstream_holds_back_the_green_feeding_it() -> None:
    c = Coordinator(_line(), settings=CoordinatorSettings(max_pressure=False))
    c.add(_agg("A", 100, {**QUIET, "west": 8, "north": 6}))
    c.add(_agg("B", 100, QUIET))
    free = _greens(c.plans(100), "A")[0]
    c.add(_agg("B", 100, {**QUIET, "west": 8}))
    blocked = _greens(c.plans(100), "A")[0]
    assert blocked < free


def test_blind_approach_is_not_starved() -> None:
    c = Coordinator(_line(), settings=CoordinatorSettings(max_pressure=False))
    c.add(_agg("A", 100, {**QUIET, "west": 6, "north": 0}, healthy=False))
    greens = _greens(c.plans(100), "A")
    assert greens[2] == greens[0]  # north is unknown: assumed as busy as the busiest


def test_malformed_or_foreign_aggregates_are_dropped() -> None:
    c = Coordinator(_line())
    assert c.ingest(b"not json") is None
    assert c.ingest(_agg("Z", 100, QUIET).encode()) is None
    assert c.plans(100) == []


def test_deployment_core_plans_once_per_interval_on_retained_topics() -> None:
    core = CoordinatorCore(_line(), CoordinatorSettings(interval_s=5))
    assert core.ingest(topics.traffic_aggregate("A"), _agg("A", 100, QUIET).encode()) == []
    out = core.tick(100)
    assert [(t, r) for t, _, r in out] == [(topics.traffic_plan("A"), True)]
    assert decode(out[0][1], SignalPlan).junction_id == "A"
    assert core.tick(102) == []
    assert len(core.tick(105)) == 1


def test_topology_round_trips_through_json(tmp_path) -> None:
    topo = _line()
    topo.save(tmp_path / "t.json")
    again = NetworkTopology.load(tmp_path / "t.json")
    assert again.junctions == topo.junctions
    assert again.feeds()["AB"] == ("B", "west")


def _pressures(plans: list[SignalPlan], jid: str) -> dict[int, float | None]:
    plan = next(p for p in plans if p.junction_id == jid)
    return {g.phase_index: g.pressure for g in plan.greens}


def test_plan_pressure_is_upstream_queue_minus_the_downstream_it_feeds() -> None:
    # the downstream term is off by default (it cost delay with green extension); the rule holds
    settings = CoordinatorSettings(max_pressure=True, pressure_down_weight=0.5)
    c = Coordinator(_line(), settings=settings)
    c.add(_agg("A", 100, {**QUIET, "west": 8, "north": 4}))
    c.add(_agg("B", 100, QUIET))
    free = _pressures(c.plans(100), "A")
    assert free[0] is not None and free[2] is not None and free[0] > free[2]
    c.add(_agg("B", 100, {**QUIET, "west": 16}))  # A's eastbound exit is queued at B
    jammed = _pressures(c.plans(100), "A")
    assert jammed[0] is not None and jammed[2] is not None and jammed[0] < jammed[2]


def test_cyclic_plans_carry_no_pressures() -> None:
    c = Coordinator(_line(), settings=CoordinatorSettings(max_pressure=False))
    c.add(_agg("A", 100, {**QUIET, "west": 8}))
    assert set(_pressures(c.plans(100), "A").values()) == {None}


@pytest.mark.parametrize("max_pressure", [True, False])
def test_a_plan_says_how_it_is_run_and_survives_the_wire(max_pressure: bool) -> None:
    c = Coordinator(_line(), settings=CoordinatorSettings(max_pressure=max_pressure))
    c.add(_agg("A", 100, {**QUIET, "west": 8}))
    plan = next(p for p in c.plans(100) if p.junction_id == "A")
    assert plan.control == ("acyclic" if max_pressure else "cyclic")
    assert decode(plan.model_dump_json().encode(), SignalPlan) == plan  # validates on arrival


def test_a_plan_whose_control_and_pressures_disagree_is_refused() -> None:
    base = {"sender": "c", "junction_id": "A", "plan_id": "p", "issued_at": 0, "expires_at": 9}
    greens = [PhaseGreen(phase_index=0, green_s=9, pressure=None)]
    with pytest.raises(ValueError, match=r"pressure for every green; phases \[0\]"):
        SignalPlan(**base, cycle_s=20, greens=greens, control="acyclic")
    pressed = [PhaseGreen(phase_index=0, green_s=9, pressure=1.0)]
    with pytest.raises(ValueError, match="control='acyclic'"):
        SignalPlan(**base, cycle_s=20, greens=pressed)


def test_max_pressure_is_the_default_and_plans_only_the_minimum_green() -> None:
    c = Coordinator(_line())
    c.add(_agg("A", 100, {**QUIET, "west": 8, "north": 1}))
    plan = next(p for p in c.plans(100) if p.junction_id == "A")
    assert {g.green_s for g in plan.greens} == {SignalSafety().min_green_s}
    pressures = {g.phase_index: g.pressure for g in plan.greens}
    assert pressures[0] is not None and pressures[2] is not None
    assert pressures[0] > pressures[2]


def test_blind_approach_gets_the_busiest_pressure() -> None:
    c = Coordinator(_line())
    c.add(_agg("A", 100, {**QUIET, "west": 6, "north": 0}, healthy=False))
    pressures = _pressures(c.plans(100), "A")
    assert pressures[2] == pressures[0]  # north is unknown: assumed as busy as the busiest


def test_green_with_nobody_to_serve_yields_to_any_demand() -> None:
    c = Coordinator(_line())
    c.add(_agg("A", 100, {**QUIET, "north": 1}))  # west/east empty, one car north
    pressures = _pressures(c.plans(100), "A")
    assert pressures[0] is not None and pressures[2] is not None
    # phase 0 serves nobody: below zero by the gap-out penalty, so one car outranks it
    assert pressures[0] < 0 < pressures[2]


def _pressure(plans: list[SignalPlan], jid: str, phase: int) -> float:
    plan = next(p for p in plans if p.junction_id == jid)
    return next(float(g.pressure or 0.0) for g in plan.greens if g.phase_index == phase)


def _measured_line() -> NetworkTopology:
    """The A -> B line with geometry: AB is 260 m at 13 m/s (20 s to B's stop line, the first
    200 m of it, 15.4 s, out of sight of B's 60 m camera)."""
    topo = _line()
    topo.edge_lengths_m["AB"] = 260.0
    topo.edge_speeds_ms["AB"] = 13.0
    return topo


def _b_pressures(
    topo: NetworkTopology,
    weight: float,
    a_showing: int,
    b_at: float,
    *,
    hold_only: bool = False,
    b_showing: int = 0,
) -> list[float]:
    """B's phase 0 (its west approach, fed by A) and phase 2 pressures at `b_at`."""
    settings = CoordinatorSettings(
        upstream_weight=weight, arrival_horizon_s=20, arrivals_hold_only=hold_only
    )
    c = Coordinator(topo, SignalSafety(), settings)
    a = _agg("A", 100, {**QUIET, "west": 8})
    c.add(a.model_copy(update={"phase_index": a_showing}))
    b = _agg("B", b_at, {**QUIET, "west": 1, "north": 1})
    c.add(b.model_copy(update={"phase_index": b_showing}))
    plans = c.plans(b_at)
    return [_pressure(plans, "B", 0), _pressure(plans, "B", 2)]


@pytest.mark.parametrize(
    ("a_showing", "b_at", "gain"),
    [
        (0, 100, 2.5),  # released 95-100 (at most 5 s / 2 s headway = 2.5), due at ~117.5
        (2, 100, 0.0),  # A's green serves north-south: nothing heads for B
        (0, 114, 0.0),  # by 114 the platoon is inside B's camera range: B counts it itself
    ],
)
def test_a_platoon_released_upstream_raises_the_pressure_of_the_green_it_will_reach(
    a_showing: int, b_at: float, gain: float
) -> None:
    on = _b_pressures(_measured_line(), 1.0, a_showing, b_at)
    off = _b_pressures(_measured_line(), 0.0, a_showing, b_at)
    assert on[0] - off[0] == pytest.approx(gain)
    assert on[1] == pytest.approx(off[1])


def test_a_platoon_beyond_the_horizon_or_over_a_link_of_unknown_length_is_not_expected() -> None:
    far = _measured_line()
    far.edge_lengths_m["AB"] = 600.0  # 46 s away: not within the 20 s horizon
    assert _b_pressures(far, 1.0, 0, 100) == _b_pressures(far, 0.0, 0, 100)
    assert _b_pressures(_line(), 1.0, 0, 100) == _b_pressures(_line(), 0.0, 0, 100)


@pytest.mark.parametrize(("b_showing", "gain"), [(0, 2.5), (2, 0.0)])
def test_hold_only_arrivals_count_for_the_green_being_shown_only(
    b_showing: int, gain: float
) -> None:
    line = _measured_line()
    on = _b_pressures(line, 1.0, 0, 100, hold_only=True, b_showing=b_showing)
    off = _b_pressures(line, 0.0, 0, 100, hold_only=True, b_showing=b_showing)
    assert on[0] - off[0] == pytest.approx(gain)  # held for the platoon, never pulled to it


def _b_arriving(topo: NetworkTopology, b_at: float, **settings: Any) -> list[float | None]:
    """What B's plan says is arriving at its phase 0 (fed by A's west approach) and phase 2."""
    c = Coordinator(topo, SignalSafety(), CoordinatorSettings(**settings))
    a = _agg("A", 100, {**QUIET, "west": 8})
    c.add(a.model_copy(update={"phase_index": 0}))
    c.add(_agg("B", b_at, {**QUIET, "west": 1, "north": 1}))
    plan = next(p for p in c.plans(b_at) if p.junction_id == "B")
    return [g.arriving for g in plan.greens if g.phase_index in (0, 2)]


@pytest.mark.parametrize(
    ("b_at", "arriving"),
    [
        (100, 0.0),  # due at ~117.5: beyond the 8 s hold horizon
        (110, 2.5),  # due within 8 s and still out of B's camera range
        (114, 0.0),  # inside B's camera range: B's own camera counts it
    ],
)
def test_a_plan_tells_the_gateway_of_a_platoon_due_within_the_hold_horizon(
    b_at: float, arriving: float
) -> None:
    on = _b_arriving(_measured_line(), b_at, hold_for_arrivals=True, hold_horizon_s=8.0)
    assert on == [
        pytest.approx(arriving),
        0.0,
    ]


def test_plans_carry_no_arrivals_when_the_hold_is_off() -> None:
    assert _b_arriving(_measured_line(), 110, hold_for_arrivals=False) == [None, None]
