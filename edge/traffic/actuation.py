"""Local max-pressure from the junction's own counts: the gateway's actuated mode."""

from __future__ import annotations

from collections.abc import Mapping

from edge.traffic.layout import JunctionLayout
from edge.traffic.signal_port import PhaseDef
from shared.traffic.demand import APPROACHING_WEIGHT, GAP_OUT_LOAD, GAP_OUT_PENALTY


def lane_load(queue: float, approaching: float, lanes: int) -> float:
    """Vehicles per lane a green should clear."""
    return (queue + APPROACHING_WEIGHT * approaching) / max(1, lanes)


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
