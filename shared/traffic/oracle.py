"""The one safety oracle: judges what a traffic light SHOWED, link by link, against the limits
and the network's conflict matrix. It never asks the controller how it meant to time things.

Used three ways: the applier's property tests, the twin's monitor (`sim.traffic.safety`) and,
at run time, the gateway's conflict monitor (in the spirit of a cabinet's MMU). Input is a
sequence of (time, state) with SUMO letters, one per link. Rules, per link:

- green_to_red: a vehicle link goes from green (G/g) to red without yellow
- yellow_to_green: a yellow that ends in anything but red
- short_yellow / long_yellow: a yellow shorter than `yellow_s` / longer than 6 s
- short_green: a green run (G or g, across phases) shorter than `min_green_s`
- short_walk: a pedestrian crossing's green shorter than max(min_green_s, pedestrian_min_s)
- long_green: a green run longer than `max_green_s`, unless the minimums of the states it
  spans add up to more (pedestrian time wins); links never seen red are exempt
- conflicting_greens: two foe links both protected green ('G') at once
- no_red_clearance: a link turns green less than `all_red_s` after a foe's yellow ended
- bad_state: a state of the wrong length or with letters SUMO does not define, or time running
  backwards
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.config.traffic import SignalSafety
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.phases import GREEN, KNOWN, RED, YELLOW
from shared.traffic.timing import YELLOW_MAX_S

EPS = 1e-6

VIOLATION_KINDS = (
    "green_to_red",
    "yellow_to_green",
    "short_yellow",
    "long_yellow",
    "short_green",
    "long_green",
    "conflicting_greens",
    "no_red_clearance",
    "short_walk",
    "bad_state",
)
# What a cabinet's conflict monitor trips on: a driver could be hit, not merely delayed.
HARD_KINDS = frozenset(
    {"green_to_red", "yellow_to_green", "short_yellow", "conflicting_greens", "no_red_clearance"}
)


@dataclass(frozen=True)
class Violation:
    junction_id: str
    time: float
    kind: str
    link: int
    detail: str


class SafetyOracle:
    """Feed it every state change with `observe`; `close` judges the runs still open."""

    def __init__(
        self,
        limits: SignalSafety,
        conflicts: ConflictMatrix | None = None,
        *,
        junction_id: str = "",
        tolerance_s: float = 0.0,
    ) -> None:
        """`tolerance_s`: how late a switch may land (one controller step) on upper bounds."""
        self.limits = limits
        self.conflicts = conflicts
        self.junction_id = junction_id
        self.tolerance_s = tolerance_s
        self._n: int | None = conflicts.n_links if conflicts is not None else None
        self._letter: list[str] = []
        self._since: list[float] = []  # when the link's current letter kind began
        self._green_since: list[float] = []  # start of the continuous green run, -1 if none
        self._run_floor: list[float] = []  # sum of the minimums of the states the run spans
        self._run_segments: list[int] = []
        self._yellow_end: list[float] = []
        self._cycles: list[bool] = []  # the link has been non-green at some point
        # Whether the current letter began while observed: a recording that starts mid-yellow
        # or mid-green cannot tell how long that run had lasted, so no lower bound is judged.
        self._seen_start: list[bool] = []
        self._last_t: float | None = None
        self._state = ""

    def _crossing(self, link: int) -> bool:
        return self.conflicts is not None and link in self.conflicts.crossings

    def _v(self, t: float, kind: str, link: int, detail: str) -> Violation:
        return Violation(self.junction_id, t, kind, link, detail)

    def observe(self, t: float, state: str) -> list[Violation]:
        """The light shows `state` from time `t`; returns what this change broke."""
        out: list[Violation] = []
        if self._last_t is not None and t < self._last_t - EPS:
            out.append(self._v(t, "bad_state", -1, f"time goes back from {self._last_t} to {t}"))
        if self._n is None:
            self._n = len(state)
        n = self._n
        if len(state) != n or not set(state) <= KNOWN:
            out.append(self._v(t, "bad_state", -1, f"state {state!r} is not {n} SUMO letters"))
            return out
        first = not self._letter
        if first:
            self._letter, self._since = [""] * n, [t] * n
            self._green_since, self._run_floor = [-1.0] * n, [0.0] * n
            self._run_segments, self._yellow_end = [0] * n, [-1e18] * n
            self._cycles, self._seen_start = [False] * n, [False] * n
        self._last_t = t
        if state == self._state:
            return out
        floor = self._state_floor(state)
        # a recording (a monitor) that starts mid-cycle knows nothing of the clearance before it
        turned = (
            []
            if first
            else [i for i, c in enumerate(state) if c in GREEN and self._letter[i] not in GREEN]
        )
        for i, new in enumerate(state):
            out.extend(self._change(i, new, t, floor))
        for i in turned:
            out.extend(self._clearance(i, t, state))
        out.extend(self._conflicts_in(t, state))
        self._state = state
        return out

    def close(self, end_time: float) -> list[Violation]:
        """Judge the runs still open at `end_time`: only a green already too long."""
        out: list[Violation] = []
        for i, letter in enumerate(self._letter):
            if letter in GREEN and self._cycles[i]:
                out.extend(self._long_green(i, end_time))
        return out

    def _state_floor(self, state: str) -> float:
        """The least time the controller may show this state (what a green run may add up to)."""
        lim = self.limits
        if any(c in YELLOW for c in state):
            return YELLOW_MAX_S  # a yellow may run up to 6 s whatever the configured floor
        walk = any(state[k] in GREEN for k in self.conflicts.crossings) if self.conflicts else False
        return max(lim.min_green_s, lim.pedestrian_min_s if walk else 0.0, lim.all_red_s)

    def _change(self, i: int, new: str, t: float, floor: float) -> list[Violation]:
        old = self._letter[i]
        out: list[Violation] = []
        if new == old:
            if new in GREEN:  # the run goes on through another state
                self._run_floor[i] += floor
                self._run_segments[i] += 1
            return out
        if old:
            out.extend(self._on_leave(i, old, new, t))
            self._seen_start[i] = True
        if old in YELLOW and new not in YELLOW:
            self._yellow_end[i] = t
        if new in GREEN and old not in GREEN:
            self._green_since[i] = t
            self._run_floor[i] = floor
            self._run_segments[i] = 1
        elif new in GREEN:
            self._run_floor[i] += floor
            self._run_segments[i] += 1
        if new not in GREEN:
            self._cycles[i] = True
            if old in GREEN:
                out.extend(self._long_green(i, t))
            self._green_since[i] = -1.0
        self._letter[i] = new
        if not (old in YELLOW and new in YELLOW):  # 'y' -> 'Y' is one yellow going on
            self._since[i] = t
        return out

    def _on_leave(self, i: int, old: str, new: str, t: float) -> list[Violation]:
        lim = self.limits
        crossing = self._crossing(i)
        out = []
        # Pedestrian signals go from walk straight to don't-walk; clearance is their red time.
        if old in GREEN and new in RED and not crossing:
            out.append(
                self._v(t, "green_to_red", i, f"link {i} goes {old!r} -> {new!r}, no yellow")
            )
        if old in YELLOW and new not in YELLOW and new not in RED and not crossing:
            out.append(
                self._v(
                    t, "yellow_to_green", i, f"link {i} goes {old!r} -> {new!r}; a yellow ends red"
                )
            )
        seen = self._seen_start[i]
        if old in YELLOW and new not in YELLOW:
            length = t - self._since[i]
            if length < lim.yellow_s - EPS and not crossing and seen:
                out.append(
                    self._v(
                        t,
                        "short_yellow",
                        i,
                        f"link {i} yellow lasted {length:.1f} s; at least {lim.yellow_s} s",
                    )
                )
            if length > YELLOW_MAX_S + self.tolerance_s + EPS:
                out.append(
                    self._v(
                        t,
                        "long_yellow",
                        i,
                        f"link {i} yellow lasted {length:.1f} s; at most {YELLOW_MAX_S} s allowed",
                    )
                )
        if old in GREEN and new not in GREEN and self._green_since[i] >= 0:
            length = t - self._green_since[i]
            need = max(lim.min_green_s, lim.pedestrian_min_s if crossing else 0.0)
            if length < need - EPS and seen:
                kind = "short_walk" if crossing else "short_green"
                out.append(
                    self._v(t, kind, i, f"link {i} green lasted {length:.1f} s; at least {need} s")
                )
        return out

    def _clearance(self, i: int, t: float, state: str) -> list[Violation]:
        """A link turning green: every foe's yellow must have ended `all_red_s` ago."""
        if self.conflicts is None:
            return []
        out = []
        for f in sorted(self.conflicts.foes_of(i)):
            if state[f] in YELLOW:
                out.append(
                    self._v(
                        t, "no_red_clearance", i, f"link {i} turns green while foe {f} is yellow"
                    )
                )
                continue
            gap = t - self._yellow_end[f]
            if gap < self.limits.all_red_s - EPS and self._letter[f] not in GREEN:
                out.append(
                    self._v(
                        t,
                        "no_red_clearance",
                        i,
                        f"link {i} turns green {gap:.1f} s after foe link {f}'s yellow ended; "
                        f"at least {self.limits.all_red_s} s required",
                    )
                )
        return out

    def _conflicts_in(self, t: float, state: str) -> list[Violation]:
        if self.conflicts is None:
            return []
        return [
            self._v(
                t,
                "conflicting_greens",
                a,
                f"links {a} and {b} cross or merge and are both protected green in {state!r}",
            )
            for a, b in sorted(self.conflicts.foes)
            if state[a] == "G" and state[b] == "G"
        ]

    def _long_green(self, i: int, end: float) -> list[Violation]:
        start = self._green_since[i]
        allowed = max(self.limits.max_green_s, self._run_floor[i])
        slack = self.tolerance_s * max(1, self._run_segments[i])
        if start < 0 or end - start <= allowed + slack + EPS:
            return []
        return [
            self._v(
                end,
                "long_green",
                i,
                f"link {i} green (G or g) lasted {end - start:.1f} s; at most {allowed:.1f} s "
                "allowed",
            )
        ]


def check_sequence(
    changes: Sequence[tuple[float, str]],
    limits: SignalSafety,
    conflicts: ConflictMatrix | None = None,
    *,
    junction_id: str = "",
    end_time: float | None = None,
    tolerance_s: float = 0.0,
) -> list[Violation]:
    """Every violation in a sequence of (time, state) changes, in time order."""
    oracle = SafetyOracle(limits, conflicts, junction_id=junction_id, tolerance_s=tolerance_s)
    out: list[Violation] = []
    for t, state in changes:
        out.extend(oracle.observe(t, state))
    if changes:
        out.extend(oracle.close(changes[-1][0] if end_time is None else end_time))
    out.sort(key=lambda v: (v.time, v.link, v.kind))
    return out


def count_by_kind(violations: Sequence[Violation]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in violations:
        counts[v.kind] = counts.get(v.kind, 0) + 1
    return counts
