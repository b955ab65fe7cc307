"""Platoons in transit: what the coordinator knows that no junction does.

A junction's cameras see the last ~60 m of each approach. A platoon that an upstream junction
released a few seconds ago is on the link between, out of every camera's view, until it is
almost at the stop line. The coordinator hears the upstream junction's counts and its phase, so
it can tell when and how many vehicles were released towards each downstream approach, and
when they will arrive (link length / speed). A plan that counts these expected arrivals keeps a
green on for a platoon about to arrive (instead of gapping out just before it), and gives the
green to an approach whose platoon is on its way: a green wave without fixed offsets.

Per feed (a link of an upstream green that enters a downstream junction's approach) the last
`slots` releases are kept in a ring; everything is numpy, so 1,000 junctions stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.traffic.demand import HEADWAY_S


@dataclass(frozen=True)
class Feeds:
    """The links from one junction's greens into another junction's approaches (one per row)."""

    junction: np.ndarray  # upstream junction position
    phase: np.ndarray  # the upstream green phase that releases it
    source: np.ndarray  # upstream approach index (the coordinator's approach numbering)
    down: np.ndarray  # downstream approach index
    weight: np.ndarray  # share of the source approach's discharge taking this link
    hidden_s: np.ndarray  # seconds from the upstream stop line until the downstream camera
    travel_s: np.ndarray  # seconds from the upstream stop line to the downstream stop line


def travel_times(
    length_m: float | None, speed_ms: float | None, camera_m: float
) -> tuple[float, float]:
    """(seconds out of sight, seconds to the stop line); unknown geometry: never expected."""
    if not length_m or not speed_ms or speed_ms <= 0:
        return (0.0, float("inf"))
    return (max(0.0, length_m - camera_m) / speed_ms, length_m / speed_ms)


class Platoons:
    """Releases per feed over the last few intervals, and the arrivals they make expected."""

    def __init__(self, feeds: Feeds, n_approaches: int, lanes: np.ndarray, slots: int = 8) -> None:
        self.feeds = feeds
        self._n = n_approaches
        self._lanes = lanes
        self._slots = slots
        n = len(feeds.junction)
        self._vehicles = np.zeros((n, slots))
        self._at = np.full((n, slots), -np.inf)
        self._next = np.zeros(n, dtype=np.int64)
        self._of_junction: dict[int, np.ndarray] = {}
        for j in np.unique(feeds.junction).tolist():
            self._of_junction[int(j)] = np.flatnonzero(feeds.junction == j)

    def release(
        self,
        junction: int,
        phase: int,
        start: float,
        seconds: float,
        waiting: np.ndarray,
        *,
        first: int,
    ) -> None:
        """Junction `junction` showed green `phase` over [start, start + seconds].

        `waiting`: vehicles on each of the junction's approaches (its first one numbered
        `first`; NaN = unknown) when the interval began; each green link releases its share,
        at most what saturation flow lets through.
        """
        rows = self._of_junction.get(junction)
        if rows is None:
            return
        f = self.feeds
        moving = rows[f.phase[rows] == phase]
        if not len(moving):
            return
        src = f.source[moving]
        cap = self._lanes[src] * seconds / HEADWAY_S
        queued = np.nan_to_num(waiting[src - first], nan=0.0)
        released = f.weight[moving] * np.minimum(cap, queued)
        slot = self._next[moving] % self._slots
        self._vehicles[moving, slot] = released
        self._at[moving, slot] = start + seconds / 2
        self._next[moving] += 1

    def expected(self, now: float, horizon_s: float) -> np.ndarray:
        """Per approach: vehicles per lane released upstream, not yet in sight of its camera,
        that reach its stop line within `horizon_s`."""
        out = np.zeros(self._n)
        if not len(self._vehicles):
            return out
        f = self.feeds
        # a slot never used (-inf) on a link of unknown length (inf) is NaN: never expected
        with np.errstate(invalid="ignore"):
            unseen = now < self._at + f.hidden_s[:, None]
            soon = self._at + f.travel_s[:, None] <= now + horizon_s
        on_way = np.where(unseen & soon, self._vehicles, 0.0).sum(axis=1)
        np.add.at(out, f.down, on_way)
        return out / self._lanes
