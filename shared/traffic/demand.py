"""How traffic control weighs camera counts: one definition for the cloud coordinator and the
gateway's local fallback, so both judge demand alike."""

from __future__ import annotations

from collections.abc import Iterable

HEADWAY_S = 2.0  # saturation headway: one vehicle per lane clears the stop line every ~2 s
# A vehicle seen approaching (within the camera's 60 m) reaches the stop line within one 5 s
# interval; the counter also undercounts approaching by ~25-35 % at 2-4 vehicles (vs SUMO).
APPROACHING_WEIGHT = 1.0
# Max-pressure gap-out: a green serving less than this (vehicles per lane, summed) loses
# GAP_OUT_PENALTY of pressure; the applier's switch margin is 1, so any demand elsewhere wins.
GAP_OUT_LOAD = 0.3
GAP_OUT_PENALTY = 1.0
# A green lets a link's traffic go: fully on a protected green ('G'); on a permissive one ('g',
# turning across oncoming traffic or a walk) it moves, but slower. An approach's share of a
# phase is the mean of its links' (`green_share`).
GREEN_SHARE = {"G": 1.0, "g": 0.5}


def green_share(state: str, links: Iterable[int]) -> float:
    """The share (0..1) of `links`' traffic that signal `state` lets go."""
    shown = [state[i] for i in links if i < len(state)]
    return sum(GREEN_SHARE.get(c, 0.0) for c in shown) / len(shown) if shown else 0.0
