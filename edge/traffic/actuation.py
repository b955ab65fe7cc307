"""Local actuated timing from the junction's own counts: serve each phase's worst queue."""

from __future__ import annotations

from collections.abc import Mapping

from edge.traffic.layout import JunctionLayout
from edge.traffic.signal_port import PhaseDef

HEADWAY_S = 2.0  # saturation headway: one vehicle per lane clears the stop line every ~2 s
APPROACHING_WEIGHT = 0.7  # most vehicles seen approaching arrive before the green ends


def lane_load(queue: float, approaching: float, lanes: int) -> float:
    """Vehicles per lane a green should clear."""
    return (queue + APPROACHING_WEIGHT * approaching) / max(1, lanes)


def actuated_greens(
    program: list[PhaseDef],
    layout: JunctionLayout,
    counts: Mapping[str, tuple[float, float]],
    min_green_s: float,
) -> dict[int, float]:
    """Green seconds per green phase: the minimum plus the time to clear its critical lane.

    Approaches without a count (camera down) keep the phase at its programmed duration, since
    nothing says their queue is short. The applier clamps the result to the safety limits.
    """
    lanes = {a.approach_id: a.lanes for a in layout.approaches}
    greens: dict[int, float] = {}
    for i, phase in enumerate(program):
        if phase.kind != "green":
            continue
        need = 0.0
        blind = False
        for approach, share in layout.served(phase.state).items():
            if share <= 0:
                continue
            if approach not in counts:
                blind = True
                continue
            queue, approaching = counts[approach]
            need = max(need, share * lane_load(queue, approaching, lanes[approach]))
        seconds = min_green_s + HEADWAY_S * need
        greens[i] = max(seconds, phase.duration_s) if blind else seconds
    return greens
