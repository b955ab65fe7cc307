"""Check a recorded signal-state sequence against `SignalSafety`, link by link.

Input: the state strings of one traffic light (SUMO letters, one per link) with the time each
took effect. Rules are judged per link, because that is what a driver sees: a left turn that is
permissive ('g') and then protected ('G') has one continuous green, not two short ones.

- green_to_red: a vehicle link goes from green (G/g) to red without yellow
- short_yellow: a yellow shorter than `safety.yellow_s`
- short_green: a green that ends before `safety.min_green_s`
- long_green: a link's continuous green (G or g, across phases) longer than `safety.max_green_s`
- conflicting_greens: two foe links protected ('G') at once
- no_red_clearance: a link turns green less than `safety.all_red_s` after a foe's yellow ended
- short_walk: a pedestrian crossing green shorter than `safety.pedestrian_min_s`
- bad_state: a state of the wrong length or with letters SUMO does not define
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.config.traffic import SignalSafety
from sim.traffic.network import SignalLayout

GREEN = frozenset("Gg")
YELLOW = frozenset("yY")  # SUMO: 'y' yellow for minor links, 'Y' for major ones
RED = frozenset("rs")
KNOWN = frozenset("GgyYrsuoO")
EPS = 1e-6

VIOLATION_KINDS = (
    "green_to_red",
    "short_yellow",
    "short_green",
    "long_green",
    "conflicting_greens",
    "no_red_clearance",
    "short_walk",
    "bad_state",
)


@dataclass(frozen=True)
class Violation:
    junction_id: str
    time: float
    kind: str
    link: int
    detail: str


def check_sequence(
    changes: Sequence[tuple[float, str]],
    safety: SignalSafety,
    layout: SignalLayout | None = None,
    *,
    junction_id: str = "",
    end_time: float | None = None,
) -> list[Violation]:
    """Every violation in a sequence of (time, state) changes, in time order.

    Runs still open at `end_time` (or the last change) are judged only where they already
    broke a rule: a green already too long on a link that does cycle (links green in every
    phase, like some free right turns, are not held to max green); a green cut short by the
    end of the run is not short.
    """
    jid = junction_id or (layout.junction_id if layout else "")
    out: list[Violation] = []
    if not changes:
        return out
    n = layout.n_links if layout else len(changes[0][1])
    foes = _foe_lists(layout, n)
    crossings = layout.crossings if layout else frozenset()
    # per link: letter now, when the current run began, when its last yellow ended
    letter = [""] * n
    since = [changes[0][0]] * n
    green_since = [-1.0] * n  # start of the continuous green run (G or g)
    yellow_end = [-1e18] * n
    cycles = [False] * n  # the link has been non-green at some point
    last_t = changes[0][0]
    for t, state in changes:
        if t < last_t - EPS:
            out.append(Violation(jid, t, "bad_state", -1, f"time goes back from {last_t} to {t}"))
        last_t = t
        if len(state) != n or not set(state) <= KNOWN:
            out.append(
                Violation(jid, t, "bad_state", -1, f"state {state!r} is not {n} SUMO letters")
            )
            continue
        for i, new in enumerate(state):
            old = letter[i]
            if new == old:
                continue
            if old:
                out.extend(
                    _on_leave(
                        jid,
                        i=i,
                        old=old,
                        new=new,
                        t=t,
                        since=since[i],
                        green_since=green_since[i],
                        safety=safety,
                        crossing=i in crossings,
                    )
                )
            if old in YELLOW and new not in YELLOW:
                yellow_end[i] = t
            if new in GREEN and old not in GREEN:
                green_since[i] = t
                for f in foes[i]:
                    gap = t - yellow_end[f]
                    if gap < safety.all_red_s - EPS and letter[f] not in GREEN:
                        out.append(
                            Violation(
                                jid,
                                t,
                                "no_red_clearance",
                                i,
                                f"link {i} turns green {gap:.1f} s after foe link {f}'s yellow "
                                f"ended; at least {safety.all_red_s} s required",
                            )
                        )
            if new not in GREEN:
                cycles[i] = True
                if old in GREEN:
                    out.extend(_long_green(jid, i, green_since[i], t, safety))
                green_since[i] = -1.0
            letter[i] = new
            since[i] = t
        for i in range(n):
            if state[i] != "G":
                continue
            for f in foes[i]:
                if f > i and state[f] == "G":
                    out.append(
                        Violation(
                            jid,
                            t,
                            "conflicting_greens",
                            i,
                            f"links {i} and {f} cross or merge and are both protected green "
                            f"in {state!r}",
                        )
                    )
    end = last_t if end_time is None else end_time
    for i in range(n):
        if letter[i] in GREEN and cycles[i]:
            out.extend(_long_green(jid, i, green_since[i], end, safety))
    out.sort(key=lambda v: (v.time, v.link, v.kind))
    return out


def _on_leave(
    jid: str,
    *,
    i: int,
    old: str,
    new: str,
    t: float,
    since: float,
    green_since: float,
    safety: SignalSafety,
    crossing: bool,
) -> list[Violation]:
    out = []
    # Pedestrian signals go from walk straight to don't-walk; clearance is their red time.
    if old in GREEN and new in RED and not crossing:
        out.append(
            Violation(jid, t, "green_to_red", i, f"link {i} goes {old!r} -> {new!r} with no yellow")
        )
    if old in YELLOW and t - since < safety.yellow_s - EPS and not crossing:
        out.append(
            Violation(
                jid,
                t,
                "short_yellow",
                i,
                f"link {i} yellow lasted {t - since:.1f} s; at least {safety.yellow_s} s required",
            )
        )
    if old in GREEN and new not in GREEN and green_since >= 0:
        length = t - green_since
        need = max(safety.min_green_s, safety.pedestrian_min_s if crossing else 0.0)
        if length < need - EPS:
            kind = "short_walk" if crossing else "short_green"
            out.append(
                Violation(
                    jid,
                    t,
                    kind,
                    i,
                    f"link {i} green lasted {length:.1f} s; at least {need} s required",
                )
            )
    return out


def _long_green(
    jid: str, i: int, start: float, end: float, safety: SignalSafety
) -> list[Violation]:
    if start < 0 or end - start <= safety.max_green_s + EPS:
        return []
    return [
        Violation(
            jid,
            end,
            "long_green",
            i,
            f"link {i} green (G or g) lasted {end - start:.1f} s; at most "
            f"{safety.max_green_s} s allowed",
        )
    ]


def _foe_lists(layout: SignalLayout | None, n: int) -> list[list[int]]:
    foes: list[list[int]] = [[] for _ in range(n)]
    if layout is None:
        return foes
    for a, b in layout.foes:
        if a < n and b < n:
            foes[a].append(b)
            foes[b].append(a)
    return foes


def count_by_kind(violations: Sequence[Violation]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in violations:
        counts[v.kind] = counts.get(v.kind, 0) + 1
    return counts
