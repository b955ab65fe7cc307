"""Programs as edgeward reads them: phases, the links a program never serves, yellows written in.

A light drives the program SUMO runs at start (the last one loaded), as it is. Some real networks
load several programs per light and one alone may never give green to some links (SUMO's `bs3d`
example runs a program whose only green serves two of four approaches); `--describe` names them.
Drawing the other programs' greens in was tried and dropped: on SUMO's Ingolstadt network a
light's real timing plans deliberately leave links red that netconvert's default program serves,
and the merged program tripped the conflict monitor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.traffic.phases import GREEN

YELLOW_S = 3.0  # written for each change interval; the applier lengthens it to its own limits


@dataclass(frozen=True)
class Phase:
    """One phase of a program as edgeward reads it (min/max: the duration when not given)."""

    state: str
    duration: float
    min_dur: float
    max_dur: float


def read_phases(phases: Iterable[Any]) -> list[Phase]:
    """Phases as sumolib or TraCI give them (`state`, `duration`, `minDur`, `maxDur`; a bound
    that is missing, None or negative is the phase's duration)."""

    def bound(value: Any, duration: float) -> float:
        return float(value) if value is not None and float(value) >= 0 else duration

    out = []
    for p in phases:
        duration = float(p.duration)
        out.append(Phase(p.state, duration, bound(p.minDur, duration), bound(p.maxDur, duration)))
    return out


def never_green(states: Sequence[str]) -> list[int]:
    """Links no state of a program gives green."""
    width = max((len(s) for s in states), default=0)
    return [i for i in range(width) if not any(i < len(s) and s[i] in GREEN for s in states)]


def with_yellows(greens: Sequence[Phase]) -> list[Phase]:
    """The greens in order, each followed by a yellow for the links the next green stops."""
    program: list[Phase] = []
    for i, green in enumerate(greens):
        program.append(green)
        nxt = greens[(i + 1) % len(greens)]
        yellow = "".join(
            "y" if a in GREEN and b not in GREEN else a
            for a, b in zip(green.state, nxt.state, strict=True)
        )
        if yellow != green.state:
            program.append(Phase(yellow, YELLOW_S, YELLOW_S, YELLOW_S))
    return program
