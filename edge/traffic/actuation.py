"""Local actuated timing from the junction's own counts: serve each phase's worst queue."""

from __future__ import annotations

from collections.abc import Mapping

from edge.traffic.layout import JunctionLayout
from edge.traffic.signal_port import PhaseDef
from shared.traffic_demand import APPROACHING_WEIGHT, GAP_OUT_LOAD, GAP_OUT_PENALTY, HEADWAY_S

SPARE_S = 1.0  # lets a phase programmed at its minimum still grow when its demand is high
BASELINE_LOAD = 1.0  # vehicles per lane added to every phase's demand, so none is zeroed


def lane_load(queue: float, approaching: float, lanes: int) -> float:
    """Vehicles per lane a green should clear."""
    return (queue + APPROACHING_WEIGHT * approaching) / max(1, lanes)


def actuated_greens(
    program: list[PhaseDef],
    layout: JunctionLayout,
    counts: Mapping[str, tuple[float, float]],
    min_green_s: float,
) -> dict[int, float]:
    """Green seconds per green phase: the program's total green, split by what is queued.

    Each phase gets the minimum plus a share of the rest in proportion to its programmed
    green times its critical lane's load (the program encodes the expected demand ratios).
    Approaches without a count (camera down) are assumed as loaded as the busiest one seen.
    The applier clamps to the safety limits.
    """
    lanes = {a.approach_id: a.lanes for a in layout.approaches}
    loads = {a: lane_load(q, n, lanes[a]) for a, (q, n) in counts.items() if a in lanes}
    busiest = max(loads.values(), default=0.0)
    greens = [i for i, p in enumerate(program) if p.kind == "green"]
    weight: dict[int, float] = {}
    for i in greens:
        need = 0.0
        for approach, share in layout.served(program[i].state).items():
            if share > 0:
                need = max(need, share * loads.get(approach, busiest))
        above = max(min_green_s, program[i].duration_s) - min_green_s
        weight[i] = (above + SPARE_S) * (need + BASELINE_LOAD)
    budget = sum(max(min_green_s, program[i].duration_s) - min_green_s for i in greens)
    total = sum(weight.values()) or 1.0
    return {i: min_green_s + budget * weight[i] / total for i in greens}


def green_still_needed(
    state: str, layout: JunctionLayout, counts: Mapping[str, tuple[float, float]]
) -> float | None:
    """Seconds the current green needs to clear what its cameras see; None if it cannot see."""
    lanes = {a.approach_id: a.lanes for a in layout.approaches}
    need = 0.0
    for approach, share in layout.served(state).items():
        if share <= 0:
            continue
        if approach not in counts:
            return None
        queue, approaching = counts[approach]
        need = max(need, share * lane_load(queue, approaching, lanes[approach]))
    return HEADWAY_S * need


def local_pressures(
    program: list[PhaseDef], layout: JunctionLayout, counts: Mapping[str, tuple[float, float]]
) -> dict[int, float]:
    """Max-pressure priorities from this junction's own latest counts (no downstream view).

    Per green phase: the sum over the approaches it serves of share x vehicles per lane.
    Approaches without a count (camera down) are assumed as loaded as the busiest one seen.
    """
    lanes = {a.approach_id: a.lanes for a in layout.approaches}
    loads = {a: lane_load(q, n, lanes[a]) for a, (q, n) in counts.items() if a in lanes}
    busiest = max(loads.values(), default=0.0)
    out = {}
    for i, p in enumerate(program):
        if p.kind == "green":
            served = layout.served(p.state).items()
            out[i] = sum(share * loads.get(a, busiest) for a, share in served if share > 0)
            if out[i] < GAP_OUT_LOAD:  # nobody to serve: any demand elsewhere outranks it
                out[i] -= GAP_OUT_PENALTY
    return out
