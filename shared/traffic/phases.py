"""A junction's signal phases as SUMO writes them: one letter per link (G, g, y, Y, r, s, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PhaseKind = Literal["green", "yellow", "red"]

GREEN = frozenset("Gg")  # G protected, g permissive (yields to its foes)
YELLOW = frozenset("yY")  # SUMO: 'y' for minor links, 'Y' for major ones
RED = frozenset("rs")  # s: stop, then go when clear (a right turn on red)
# SUMO also defines u (red+yellow), o and O (off, blinking / no signal)
KNOWN = frozenset("GgyYrsuoO")


def phase_kind(state: str) -> PhaseKind:
    """Kind of a SUMO signal state: any 'y' -> yellow; else any G/g -> green; else red."""
    if any(c in YELLOW for c in state):
        return "yellow"
    if any(c in GREEN for c in state):
        return "green"
    return "red"


@dataclass(frozen=True)
class PhaseDef:
    """One phase of a junction's static program."""

    state: str  # SUMO signal state string, e.g. "GGrrrrGGrrrr"
    duration_s: float  # static program duration (the fixed schedule)
    min_s: float
    max_s: float
    kind: PhaseKind  # derived from the state: any 'y' -> yellow; any G/g -> green

    @classmethod
    def from_state(
        cls,
        state: str,
        duration_s: float,
        min_s: float | None = None,
        max_s: float | None = None,
    ) -> PhaseDef:
        """Build a phase, deriving `kind` from the state string."""
        return cls(
            state=state,
            duration_s=duration_s,
            min_s=duration_s if min_s is None else min_s,
            max_s=duration_s if max_s is None else max_s,
            kind=phase_kind(state),
        )
