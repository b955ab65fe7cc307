"""A signal controller in memory with a clock the test drives: the applier's unit under test."""

from __future__ import annotations

from collections.abc import Sequence

from edge.traffic.signal_port import PhaseDef
from shared.traffic.conflicts import ConflictMatrix


class MemoryPort:
    """Implements SignalPort; holds a phase until set_phase, like the twin's port must.

    Pedestrian crossings are given as phases (`crossings`) or as links (`crossing_links`, a
    phase has a crossing where one of them is green), as the twin's port derives them.
    """

    def __init__(
        self,
        program: list[PhaseDef],
        crossings: frozenset[int] = frozenset(),
        junction_id: str = "J1",
        start_phase: int = 0,
        crossing_links: frozenset[int] = frozenset(),
    ) -> None:
        self.junction_id = junction_id
        self._program = program
        self._installed: list[PhaseDef] = list(program)
        self._crossings = crossings
        self._crossing_links = crossing_links
        self._phase = start_phase
        self.now = 0.0
        self.shown: list[tuple[float, str]] = []  # every state change, as a recorder sees it
        self.released = False
        self.flashing = False

    def phases(self) -> list[PhaseDef]:
        return list(self._program)

    def install(self, program: Sequence[PhaseDef]) -> None:
        assert [p.state for p in program[: len(self._program)]] == [
            p.state for p in self._program
        ], "an installed program must keep the junction's own phases first"
        self._installed = list(program)

    def current_phase(self) -> int:
        return self._phase

    def release(self) -> None:
        self.released = True

    def fail_safe(self) -> None:
        self.flashing = True
        self.shown.append((self.now, "o" * len(self._program[0].state)))

    def set_phase(self, index: int) -> None:
        if self.flashing:
            return
        self.released = False
        self._phase = index
        state = self._installed[index].state
        if not self.shown or self.shown[-1][1] != state:
            self.shown.append((self.now, state))

    def time(self) -> float:
        return self.now

    def has_pedestrian_crossing(self, phase: int) -> bool:
        state = self._program[phase].state
        return phase in self._crossings or any(state[k] in "Gg" for k in self._crossing_links)


def four_phase_program() -> list[PhaseDef]:
    """What netconvert writes for a plain 4-arm junction (two greens, two yellows)."""
    return [
        PhaseDef.from_state("GGrrGGrr", 31),
        PhaseDef.from_state("yyrryyrr", 4),
        PhaseDef.from_state("rrGGrrGG", 31),
        PhaseDef.from_state("rryyrryy", 4),
    ]


def foes_never_green_together(program: Sequence[PhaseDef]) -> ConflictMatrix:
    """A test network for a made-up program: links no phase releases together are foes."""
    width = len(program[0].state)
    together = {
        (a, b)
        for p in program
        for a in range(width)
        for b in range(a + 1, width)
        if p.state[a] in "Gg" and p.state[b] in "Gg"
    }
    pairs = [(a, b) for a in range(width) for b in range(a + 1, width) if (a, b) not in together]
    return ConflictMatrix.of(width, pairs)
