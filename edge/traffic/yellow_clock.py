"""Yellow timed per link, not per phase.

City programs stagger a change interval over several yellow phases (links 0-3 yellow while
link 4 is still green, then link 4 too, then 0-3 red). Stretching each phase to `yellow_s`
gives 0-3 two yellows' worth (8 s where 6 is the most allowed). Here a yellow phase runs its
programmed time, longer only as far as a link whose yellow ends with it needs to reach
`yellow_s`, and never so long that a link passes the 6 s maximum: each later phase the link
stays yellow in is reserved one controller step. That holds whenever `yellow_s` leaves a step
to spare below 6 s.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.traffic.timing import YELLOW_MAX_S

_EPS = 1e-6
_YELLOW = "yY"
STEP_S = 1.0  # the longest controller step we plan for (SUMO's default; cabinets step 0.1 s)


class YellowClock:
    """When each link's current yellow began; `states` are the installed phases, the
    junction's own program first (`own` of them), then the applier's clearance phases."""

    def __init__(self, states: Sequence[str], own: int, yellow_s: float) -> None:
        self._states = list(states)
        self._own = own
        self.yellow_s = yellow_s
        self._since: dict[int, float] = {}

    def show(self, state: str, now: float) -> None:
        """The controller shows `state` from `now`."""
        for k, c in enumerate(state):
            if c in _YELLOW:
                self._since.setdefault(k, now)
            else:
                self._since.pop(k, None)

    def unserved(self, there: str, now: float) -> bool:
        """Would showing `there` end some link's yellow before `yellow_s`?"""
        return any(
            now - since + _EPS < self.yellow_s
            for k, since in self._since.items()
            if there[k] not in _YELLOW
        )

    def _ahead(self, j: int, k: int) -> int:
        """Phases from j on, in program order, that show link k yellow without a break."""
        count = 0
        while count < self._own and self._states[j][k] in _YELLOW:
            count += 1
            j = (j + 1) % self._own if j < self._own else j
        return count

    def duration(self, i: int, after: int, programmed_s: float, now: float) -> float:
        """Seconds for yellow phase i, beginning now, when phase `after` follows it."""
        need, cap = 0.0, YELLOW_MAX_S
        for k, c in enumerate(self._states[i]):
            if c not in _YELLOW:
                continue
            shown = now - self._since.get(k, now)
            cap = min(cap, YELLOW_MAX_S - shown - STEP_S * self._ahead(after, k))
            if self._states[after][k] not in _YELLOW:
                need = max(need, self.yellow_s - shown)
        # a short yellow endangers, a long one only delays: the need wins over the cap
        return max(need, min(max(programmed_s, need), cap))
