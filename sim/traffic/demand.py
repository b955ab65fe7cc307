"""Demand for any network: seeded Poisson trips between its fringe edges, shaped by a profile.

Trips carry only origin and destination; SUMO routes them when they depart, so this works on
any network without duarouter. A network with no dead ends (a ring road, netgenerate's grids, a
city cut along its boundary streets) enters and leaves at the edge of the map instead: the
nodes on its outer boundary (`_outer_gates`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

import numpy as np

from shared.errors import EdgewardError

Profile = Literal["steady", "rush", "asymmetric"]
PROFILES: tuple[str, ...] = ("steady", "rush", "asymmetric")

# (id, probability, length m, width m, accel, decel, max speed m/s): a plausible urban mix.
VEHICLE_MIX = [
    ("car", 0.74, 4.5, 1.8, 2.6, 4.5, 15.0),
    ("van", 0.13, 6.0, 2.0, 2.0, 4.0, 14.0),
    ("truck", 0.08, 10.0, 2.5, 1.3, 4.0, 12.0),
    ("bus", 0.05, 12.0, 2.55, 1.2, 4.0, 12.0),
]
COLOURS = [
    "220,220,220",
    "30,30,30",
    "150,150,155",
    "180,20,20",
    "20,50,160",
    "240,240,240",
    "200,160,30",
    "40,110,50",
    "90,60,40",
    "120,0,60",
]


class DemandError(EdgewardError):
    """Demand cannot be generated for a network."""


@dataclass(frozen=True)
class Gate:
    """A fringe edge where trips start or end, with its direction of travel."""

    edge_id: str
    node_id: str
    heading_deg: float
    share: float = 1.0  # of one entry's demand: a map-edge node splits it over its roads


def rate_factor(profile: str, t: float, horizon: float) -> float:
    """Demand multiplier at time t: rush rises to a peak in the middle of the run."""
    if profile != "rush":
        return 1.0
    x = t / max(horizon, 1.0)
    # 0.6x at the ends, 1.7x at the peak (a smooth bump over the middle half).
    return 0.6 + 1.1 * math.exp(-(((x - 0.5) / 0.2) ** 2))


def _gates(net: Any) -> tuple[list[Gate], list[Gate]]:
    """Entry and exit edges at the fringe: nothing flows into an entry or out of an exit.

    Turnarounds do not count as flow, so dead ends with U-turns are fringe too; split nodes
    (where a turn lane opens) pass traffic straight through and are not.
    """
    entries, exits = [], []
    for edge in net.getEdges(withInternal=False):
        if not _drivable(edge):
            continue
        feeds = [
            c
            for conns in edge.getIncoming().values()
            for c in conns
            if c.getDirection() != "t" and not c.getFrom().getFunction()
        ]
        leaves = [
            c
            for conns in edge.getOutgoing().values()
            for c in conns
            if c.getDirection() != "t" and not c.getTo().getFunction()
        ]
        heading = _edge_heading(edge)
        if not feeds:
            entries.append(Gate(edge.getID(), edge.getFromNode().getID(), heading))
        if not leaves:
            exits.append(Gate(edge.getID(), edge.getToNode().getID(), heading))
    return entries, exits


# A node this close to the network's convex hull (share of the hull's diagonal, at least 1 m)
# is on the edge of the map: a grid's whole perimeter, not only its corners.
HULL_TOLERANCE = 0.02


def _outer_gates(net: Any) -> tuple[list[Gate], list[Gate]]:
    """Entries and exits at the edge of the map, for a network without dead ends.

    Trips leave each boundary node on any road away from it and end on any road into one; a
    node's roads share one entry's demand, so a boundary node feeds what a fringe road would.
    """
    nodes = [n for n in net.getNodes() if n.getType() != "internal"]
    coords = np.array([n.getCoord()[:2] for n in nodes], dtype=float)
    if len(coords) < 3:
        return [], []
    hull = _convex_hull(coords)
    if len(hull) < 3:
        return [], []
    tol = max(1.0, HULL_TOLERANCE * float(np.ptp(coords, axis=0).max()))
    outer = {n.getID() for n, xy in zip(nodes, coords, strict=True) if _near(xy, hull, tol)}
    entries, exits = [], []
    for node in nodes:
        if node.getID() not in outer:
            continue
        away = [e for e in node.getOutgoing() if _drivable(e)]
        entries += [Gate(e.getID(), node.getID(), _edge_heading(e), 1.0 / len(away)) for e in away]
        exits += [
            Gate(e.getID(), node.getID(), _edge_heading(e))
            for e in node.getIncoming()
            if _drivable(e)
        ]
    return entries, exits


def _drivable(edge: Any) -> bool:
    return not edge.getFunction() and bool(edge.allows("passenger"))


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted({(float(x), float(y)) for x, y in points})

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1], dtype=float)


def _near(xy: np.ndarray, hull: np.ndarray, tol: float) -> bool:
    """Whether a point lies within `tol` of the hull's boundary."""
    a, b = hull, np.roll(hull, -1, axis=0)
    ab = b - a
    t = np.clip(
        np.einsum("ij,ij->i", xy - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0, 1
    )
    dist = np.linalg.norm(a + t[:, None] * ab - xy, axis=1)
    return bool(dist.min() <= tol)


def _edge_heading(edge: Any) -> float:
    (x0, y0), (x1, y1) = edge.getFromNode().getCoord(), edge.getToNode().getCoord()
    return math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360.0


def generate_trips(
    net: Any,
    out: Path,
    *,
    profile: str,
    seconds: float,
    veh_per_hour: float,
    seed: int,
    main_heading_deg: float = 90.0,
    gate_weight: Callable[[Gate], float] | None = None,
) -> int:
    """Write a trips file for `seconds` of demand; returns the number of trips."""
    if profile not in PROFILES:
        raise DemandError(f"demand profile {profile!r} is unknown; use one of {PROFILES}")
    entries, exits = _gates(net)
    if not entries or not exits:
        entries, exits = _outer_gates(net)
    if not entries or not exits:
        raise DemandError(
            "the network has no fringe edges and no boundary to start or end trips (no dead-end "
            "nodes, fewer than three junctions on the edge of the map); give a route file with "
            "--routes"
        )
    rng = np.random.default_rng(seed)
    base = np.ones(len(entries))
    if profile == "asymmetric":
        # One direction dominates (e.g. inbound in the morning): 3x versus 0.6x.
        cos = np.array([math.cos(math.radians(g.heading_deg - main_heading_deg)) for g in entries])
        base = np.where(cos > 0.7, 3.0, 0.6)
    if gate_weight is not None:
        base = base * np.array([gate_weight(g) for g in entries])
    reachable = {g.edge_id: _reachable(net, g.edge_id) for g in entries}
    lines = [
        '<routes xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/routes_file.xsd">',
        '  <vTypeDistribution id="mix">',
    ]
    for vid, p, length, width, accel, decel, vmax in VEHICLE_MIX:
        lines.append(
            f'    <vType id="{vid}" probability="{p}" length="{length}" width="{width}" '
            f'accel="{accel}" decel="{decel}" maxSpeed="{vmax}" sigma="0.5" minGap="2.5"/>'
        )
    lines.append("  </vTypeDistribution>")
    trips = []
    for i, gate in enumerate(entries):
        dests = [
            d for d in exits if d.node_id != gate.node_id and d.edge_id in reachable[gate.edge_id]
        ]
        if not dests:
            continue
        # Mostly straight on, fewer turns: weight exits by how well they continue the heading.
        w = np.array(
            [
                1.0 + 2.0 * max(0.0, math.cos(math.radians(d.heading_deg - gate.heading_deg)))
                for d in dests
            ]
        )
        w /= w.sum()
        t = 0.0
        rate = veh_per_hour * base[i] * gate.share / 3600.0
        peak = rate * 1.7
        while True:  # thinning: a Poisson process with a time-varying rate
            t += float(rng.exponential(1.0 / peak))
            if t >= seconds:
                break
            if rng.random() > rate * rate_factor(profile, t, seconds) / peak:
                continue
            dest = dests[int(rng.choice(len(dests), p=w))]
            colour = COLOURS[int(rng.integers(len(COLOURS)))]
            trips.append((t, gate.edge_id, dest.edge_id, colour))
    trips.sort()
    for n, (t, src, dst, colour) in enumerate(trips):
        lines.append(
            f'  <trip id="t{n}" type="mix" depart="{t:.2f}" from={quoteattr(src)} '
            f'to={quoteattr(dst)} departLane="best" departSpeed="max" color="{colour}"/>'
        )
    lines.append("</routes>")
    out.write_text("\n".join(lines) + "\n")
    return len(trips)


def _reachable(net: Any, edge_id: str) -> set[str]:
    return {e.getID() for e in net.getReachable(net.getEdge(edge_id), vclass="passenger")}
