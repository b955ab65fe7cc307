"""A signal controller in memory with a clock the test drives: the applier's unit under test."""

from __future__ import annotations

from edge.traffic.signal_port import PhaseDef


class MemoryPort:
    """Implements SignalPort; holds a phase until set_phase, like the twin's port must."""

    def __init__(
        self,
        program: list[PhaseDef],
        crossings: frozenset[int] = frozenset(),
        junction_id: str = "J1",
        start_phase: int = 0,
    ) -> None:
        self.junction_id = junction_id
        self._program = program
        self._crossings = crossings
        self._phase = start_phase
        self.now = 0.0

    def phases(self) -> list[PhaseDef]:
        return list(self._program)

    def current_phase(self) -> int:
        return self._phase

    def set_phase(self, index: int) -> None:
        self._phase = index

    def time(self) -> float:
        return self.now

    def has_pedestrian_crossing(self, phase: int) -> bool:
        return phase in self._crossings


def four_phase_program() -> list[PhaseDef]:
    """What netconvert writes for a plain 4-arm junction (two greens, two yellows)."""
    return [
        PhaseDef.from_state("GGrrGGrr", 31),
        PhaseDef.from_state("yyrryyrr", 4),
        PhaseDef.from_state("rrGGrrGG", 31),
        PhaseDef.from_state("rryyrryy", 4),
    ]
