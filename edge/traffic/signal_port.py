"""The signal-controller interface: the twin (traci) and a real controller implement it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

PhaseKind = Literal["green", "yellow", "red"]


def phase_kind(state: str) -> PhaseKind:
    """Kind of a SUMO signal state: any 'y' -> yellow; else any G/g -> green; else red."""
    if "y" in state or "Y" in state:
        return "yellow"
    if "G" in state or "g" in state:
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


class SignalPort(Protocol):
    """One junction's signal controller, as the gateway sees it."""

    junction_id: str

    def phases(self) -> list[PhaseDef]:
        """The junction's own static program."""
        ...

    def current_phase(self) -> int: ...

    def set_phase(self, index: int) -> None:
        """Switch to phase `index` and HOLD it until the next call; only the applier calls this.

        The controller must not advance on its own while the applier drives it (in SUMO:
        setPhase then setPhaseDuration to a large value), or it could cut a yellow short.
        """
        ...

    def time(self) -> float:
        """Seconds (simulation time in the twin)."""
        ...

    def has_pedestrian_crossing(self, phase: int) -> bool: ...
