"""The signal-controller interface: the twin (traci) and a real controller implement it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.traffic.phases import PhaseDef, PhaseKind, phase_kind

__all__ = ["PhaseDef", "PhaseKind", "SignalPort", "phase_kind"]


class SignalPort(Protocol):
    """One junction's signal controller, as the gateway sees it."""

    junction_id: str

    def phases(self) -> list[PhaseDef]:
        """The junction's own static program."""
        ...

    def install(self, program: Sequence[PhaseDef]) -> None:
        """Load the applier's program (the junction's own, plus its red-clearance phases).

        From then on `current_phase` and `set_phase` count phases of this program; the first
        phases are the junction's own, in their own order, so indexes before it still hold.
        """
        ...

    def current_phase(self) -> int: ...

    def set_phase(self, index: int) -> None:
        """Switch to phase `index` and HOLD it until the next call; only the applier calls this.

        The controller must not advance on its own while the applier drives it (in SUMO:
        setPhase then setPhaseDuration to a large value), or it could cut a yellow short.
        """
        ...

    def release(self) -> None:
        """Hand the junction back to the controller's own timing plan, from any thread.

        The watchdog's way out of a stalled gateway loop; the next `set_phase` takes control
        again.
        """
        ...

    def fail_safe(self) -> None:
        """Flash (all-red) until a technician resets the cabinet; `set_phase` is ignored."""
        ...

    def time(self) -> float:
        """Monotonic seconds for phase timing (simulation time in the twin), never wall time."""
        ...

    def has_pedestrian_crossing(self, phase: int) -> bool: ...
