"""The applier's safety limits on phase lengths, and the per-link red-clearance clock.

Times here are the port's monotonic seconds (simulation time in the twin): a wall clock that
steps (NTP, a daylight change) must never stretch or cut a yellow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.timing import YELLOW_MAX_S

_EPS = 1e-6
_GREEN = "Gg"
_YELLOW = "yY"


def min_green(safety: SignalSafety, has_crossing: bool) -> float:
    """Shortest allowed green: pedestrians need their walk time where a crossing exists."""
    if has_crossing:
        return max(safety.min_green_s, safety.pedestrian_min_s)
    return safety.min_green_s


def max_green(safety: SignalSafety, has_crossing: bool) -> float:
    """Longest allowed green; never below the minimum (pedestrian time wins a conflict)."""
    return max(safety.max_green_s, min_green(safety, has_crossing))


def yellow_duration(safety: SignalSafety, programmed_s: float) -> float:
    return min(YELLOW_MAX_S, max(safety.yellow_s, programmed_s))


def red_duration(safety: SignalSafety, programmed_s: float) -> float:
    return max(safety.all_red_s, programmed_s)


def _greens(program: Sequence[PhaseDef]) -> list[int]:
    return [i for i, p in enumerate(program) if p.kind == "green"]


def program_order_tails(
    program: Sequence[PhaseDef], held: Sequence[int], shortest: Callable[[int], float]
) -> dict[tuple[int, int], float]:
    """(green, link) -> least time the link stays green after that green, in program order."""
    n = len(program)
    out: dict[tuple[int, int], float] = {}
    for i in _greens(program):
        for k in held:
            if program[i].state[k] not in _GREEN:
                continue
            tail, j = 0.0, (i + 1) % n
            while program[j].state[k] in _GREEN and j != i:
                tail += shortest(j)
                j = (j + 1) % n
            out[(i, k)] = tail
    return out


def worst_exits(
    program: Sequence[PhaseDef],
    held: Sequence[int],
    paths: dict[tuple[int, int], list[int]],
    *,
    shortest: Callable[[int], float],
    floor: Callable[[int], float],
    max_green_s: float,
) -> dict[tuple[int, int], float]:
    """(green, link) -> longest the link can stay green after that green when acyclic.

    Over every way out (the clearance paths, and the program's own order), with each later
    green where the link is still green at its minimum. A way that could keep the link
    green forever counts as max green: that green then ends at its minimum.
    """
    n = len(program)
    greens = _greens(program)
    routes: dict[int, list[tuple[list[int], int]]] = {g: [] for g in greens}
    for (g, t), path in paths.items():
        routes[g].append((path, t))
    for g in greens:
        path, j = [], (g + 1) % n
        while j not in greens:
            path.append(j)
            j = (j + 1) % n
        routes[g].append((path, j))
    memo: dict[tuple[int, int], float] = {}

    def run(path: list[int], t: int, k: int, seen: frozenset[int]) -> float:
        """Longest link k stays green along one way out, then after green t."""
        green = 0.0
        for i in path:
            if program[i].state[k] not in _GREEN:
                return green  # its green ends on the way: nothing later counts
            green += shortest(i)
        if program[t].state[k] in _GREEN:
            green += floor(t) + worst(t, k, seen)
        return green

    def worst(g: int, k: int, seen: frozenset[int]) -> float:
        if g in seen:
            return max_green_s
        if (g, k) not in memo:
            # every green has at least its program-order way out, so max() has something
            memo[(g, k)] = max(run(path, t, k, seen | {g}) for path, t in routes[g])
        return memo[(g, k)]

    return {
        (g, k): worst(g, k, frozenset())
        for g in greens
        for k in held
        if program[g].state[k] in _GREEN
    }


class ClearanceClock:
    """When each link's yellow last ended, so no foe turns green within `all_red_s` of it.

    Without a conflict matrix every other link counts as a foe (safe, if slower).
    """

    def __init__(self, n_links: int, all_red_s: float, conflicts: ConflictMatrix | None) -> None:
        self.all_red_s = all_red_s
        self._conflicts = conflicts
        self._n = n_links
        self._yellow_end = [-math.inf] * n_links  # no yellow has ended yet
        self._state = ""

    def show(self, state: str, now: float) -> None:
        """The controller shows `state` from `now`."""
        for k, old in enumerate(self._state):
            if old in _YELLOW and state[k] not in _YELLOW:
                self._yellow_end[k] = now
        self._state = state

    def _foes(self, k: int) -> frozenset[int] | range:
        if self._conflicts is None:
            return range(self._n)
        return self._conflicts.foes_of(k)

    def wait_s(self, state: str, now: float) -> float:
        """Seconds before `state` may be shown: its new greens wait out their foes' clearance."""
        wait = 0.0
        for k, (old, new) in enumerate(zip(self._state, state, strict=True)):
            if new not in _GREEN or old in _GREEN:
                continue
            for f in self._foes(k):
                if f == k:
                    continue
                if state[f] in _YELLOW:
                    return math.inf  # a foe yellow in that very state: never from here
                # a foe yellow now ends only when we leave this state: a full clearance still due
                end = now if self._state[f] in _YELLOW and state[f] not in _YELLOW else None
                since = self._yellow_end[f] if end is None else end
                wait = max(wait, since + self.all_red_s - now)
        return wait if wait > _EPS else 0.0
