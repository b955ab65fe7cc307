"""Route finding for acyclic control: which green the current one may hand over to, and how.

Split from the applier, which keeps the clock and the switching; this module only answers
questions about the program's shape (its clearance paths and its follow-on greens), so it holds
no time and changes nothing on the controller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edge.traffic.program import follow_on_greens
from edge.traffic.signal_port import PhaseDef

__all__ = ["Routes"]


class Routes:
    """The ways from one green to another through a program's clearance paths.

    `paths[(a, b)]` lists the phases shown between green a and green b (from `clearance_paths`).
    A follow-on green (a protected turn continuing its parent green) is entered only from its
    parent, and only where a clearance path leads from the parent to it.
    """

    def __init__(
        self, program: Sequence[PhaseDef], paths: Mapping[tuple[int, int], Sequence[int]]
    ) -> None:
        self._paths = paths
        follow_on = follow_on_greens(program)
        # parent green -> its follow-on turn green
        self.turn_after: dict[int, int] = {
            parent: j for j, parent in follow_on.items() if (parent, j) in paths
        }
        # follow-on turn green -> its parent green
        self.follow_on: dict[int, int] = {
            j: p for j, p in follow_on.items() if self.turn_after.get(p) == j
        }

    def reachable(self, current: int, k: int) -> bool:
        """A green the current one may hand over to: directly, or through its follow-on green.

        A crossing's program (walk green -> the same green without walk -> yellow) has no
        clearance path out of the walk green but through its follow-on: without this, acyclic
        control found nowhere to go and held every walk green to its maximum.
        """
        if k in self.follow_on:
            return False
        if (current, k) in self._paths:
            return True
        turn = self.turn_after.get(current)
        return k != current and turn is not None and (turn, k) in self._paths

    def route_to(self, current: int, target: int) -> list[int]:
        """The phases to show from the current green to `target` (its clearance path)."""
        if (current, target) in self._paths:
            return [*self._paths[(current, target)], target]
        turn = self.turn_after[current]
        return [*self._paths[(current, turn)], turn, *self._paths[(turn, target)], target]
