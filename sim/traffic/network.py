"""What a signalised network looks like to a controller: junctions, approaches, links, conflicts.

Everything is derived from the network file, never assumed: a junction has as many approaches as
it has incoming road edges, and its phases come from its own program.
"""

from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import EdgewardError
from shared.traffic.nema import NEMA_TYPE, ring_phases, written_out
from shared.traffic.programs import Phase, read_phases

CAMERA_RANGE_M = 60.0


class NetworkError(EdgewardError):
    """A network file cannot be read or has nothing to control."""


@dataclass(frozen=True)
class LaneView:
    """One incoming lane as a camera sees it: the last `range_m` metres before the stop line."""

    lane_id: str
    slot: int  # lateral position across the approach, 0 = rightmost lane at the stop line
    length_m: float
    width_m: float
    offset_m: float = 0.0  # distance from the lane's end to the stop line (upstream segments)


@dataclass(frozen=True)
class Approach:
    """One incoming road edge of a signalised junction; its lanes share one camera."""

    approach_id: str  # compass leg the traffic comes from ("north", "south-west", ...)
    edge_id: str
    heading_deg: float  # direction of travel into the junction, 0 = north, clockwise
    lanes: tuple[LaneView, ...]  # stop-line lanes first, then upstream segments within range
    link_indices: tuple[int, ...]  # tls link indices fed by this approach

    @property
    def n_slots(self) -> int:
        return 1 + max(lane.slot for lane in self.lanes)

    @property
    def width_m(self) -> float:
        return sum(lane.width_m for lane in self.lanes if lane.offset_m == 0.0)


@dataclass(frozen=True)
class SignalLayout:
    """The link structure of one traffic light, as the safety checker needs it."""

    junction_id: str
    n_links: int
    foes: frozenset[tuple[int, int]] = frozenset()  # unordered pairs stored as (low, high)
    crossings: frozenset[int] = frozenset()  # links that are pedestrian crossings

    def are_foes(self, a: int, b: int) -> bool:
        return (min(a, b), max(a, b)) in self.foes


@dataclass(frozen=True)
class Junction:
    """A traffic light (tls) with its approaches and link layout."""

    junction_id: str
    approaches: tuple[Approach, ...]
    layout: SignalLayout
    node_ids: tuple[str, ...] = field(default=())

    def approach(self, key: str) -> Approach:
        """An approach by compass id or edge id; an error lists the valid ones."""
        for a in self.approaches:
            if key in (a.approach_id, a.edge_id):
                return a
        valid = ", ".join(a.approach_id for a in self.approaches)
        raise NetworkError(
            f"junction {self.junction_id}: no approach {key!r}; its approaches are {valid}"
        )


_COMPASS = [
    "north",
    "north-east",
    "east",
    "south-east",
    "south",
    "south-west",
    "west",
    "north-west",
]


def _leg_name(heading_deg: float) -> str:
    """The compass leg traffic comes from: heading south means it comes from the north."""
    origin = (heading_deg + 180.0) % 360.0
    return _COMPASS[round(origin / 45.0) % 8]


def _off_compass(heading_deg: float) -> float:
    """Degrees between a heading and the nearest of the eight compass points."""
    r = heading_deg % 45.0
    return min(r, 45.0 - r)


def _heading(shape: list[tuple[float, float]]) -> float:
    """Direction of travel over the last segment of a lane shape (0 = north, clockwise)."""
    (x0, y0), (x1, y1) = shape[-2], shape[-1]
    return math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360.0


def read_net(path: Path) -> Any:
    """A sumolib network with connections and programs; a clear error when it cannot be read.

    Cached by path and modification time: a city network takes seconds to parse and a run
    reads it for checking, demand and junctions. Callers must not modify the returned net.
    """
    if not path.exists():
        raise NetworkError(f"network file {path} does not exist; check the path")
    stat = path.stat()
    return _read_net(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read_net(path: str, mtime_ns: int, size: int) -> Any:
    import sumolib

    try:
        return sumolib.net.readNet(
            path, withPrograms=True, withConnections=True, withPedestrianConnections=True
        )
    except Exception as exc:  # sumolib raises bare SAX/ValueErrors
        raise NetworkError(
            f"network file {path} is not a readable SUMO network ({type(exc).__name__}: {exc}); "
            "give a .net.xml written by netconvert or netedit"
        ) from exc


def junctions_of(net: Any) -> list[Junction]:
    """Every traffic light of the network with its approaches, in id order."""
    out = []
    for tls in sorted(net.getTrafficLights(), key=lambda t: t.getID()):
        out.append(_junction(net, tls))
    return out


def _junction(net: Any, tls: Any) -> Junction:
    by_edge: dict[str, list[int]] = {}
    lanes_by_edge: dict[str, set[str]] = {}
    n_links = 0
    conns: dict[int, Any] = {}
    crossings: set[int] = set()
    for in_lane, out_lane, link in tls.getConnections():
        n_links = max(n_links, link + 1)
        edge = in_lane.getEdge()
        if "crossing" in (edge.getFunction(), out_lane.getEdge().getFunction()):
            crossings.add(link)
        for c in in_lane.getOutgoing():
            if c.getTLSID() == tls.getID() and c.getTLLinkIndex() == link:
                conns[link] = c
        if edge.getFunction() in ("crossing", "walkingarea") or not edge.allows("passenger"):
            continue
        by_edge.setdefault(edge.getID(), []).append(link)
        lanes_by_edge.setdefault(edge.getID(), set()).add(in_lane.getID())

    approaches = []
    for program in tls.getPrograms().values():
        for phase in program.getPhases():
            n_links = max(n_links, len(phase.state))
    headings = {
        e: _heading([tuple(p[:2]) for p in net.getLane(min(lanes_by_edge[e])).getShape()])
        for e in by_edge
    }
    # Two legs from one side (5-leg junctions, slip roads): the one nearest the compass point
    # keeps the plain name, the other is named by its edge too.
    names: dict[str, str] = {}
    for e in sorted(by_edge, key=lambda e: (_off_compass(headings[e]), e)):
        name = _leg_name(headings[e])
        names[e] = name if name not in names.values() else f"{name}:{e}"
    for edge_id in sorted(by_edge):
        edge = net.getEdge(edge_id)
        lanes = sorted(
            (net.getLane(lid) for lid in lanes_by_edge[edge_id]), key=lambda ln: ln.getIndex()
        )
        first = lanes[0].getIndex()  # slots count from the rightmost driving lane, not sidewalk
        heading = headings[edge_id]
        name = names[edge_id]
        approaches.append(
            Approach(
                approach_id=name,
                edge_id=edge_id,
                heading_deg=round(heading, 1),
                lanes=tuple(
                    LaneView(ln.getID(), ln.getIndex() - first, ln.getLength(), ln.getWidth())
                    for ln in lanes
                )
                + _upstream(edge, lanes, first),
                link_indices=tuple(sorted(set(by_edge[edge_id]))),
            )
        )
    approaches.sort(key=lambda a: (_COMPASS.index(a.approach_id.split(":")[0]), a.edge_id))
    layout = SignalLayout(
        junction_id=tls.getID(),
        n_links=n_links,
        foes=_foes(conns),
        crossings=frozenset(crossings),
    )
    nodes = sorted({c.getJunction().getID() for c in conns.values() if c.getJunction()})
    return Junction(tls.getID(), tuple(approaches), layout, tuple(nodes))


def _upstream(edge: Any, lanes: list[Any], first: int) -> tuple[LaneView, ...]:
    """Lanes of the edge feeding a short approach edge, so the camera still sees ~60 m.

    Networks split an approach where a turn lane opens; the camera looks across that split.
    Only a plain split is followed (the upstream node is not itself signalised).
    """
    length = min(ln.getLength() for ln in lanes)
    if length >= CAMERA_RANGE_M or edge.getFromNode().getType() == "traffic_light":
        return ()
    out = []
    for pred in edge.getIncoming():
        if pred.getFunction() or pred.getFromNode() is edge.getToNode():
            continue
        for ln in pred.getLanes():
            targets = [c.getToLane().getIndex() for c in ln.getOutgoing() if c.getTo() is edge]
            if targets and ln.allows("passenger"):
                slot = max(0, min(targets) - first)
                out.append(LaneView(ln.getID(), slot, ln.getLength(), ln.getWidth(), length))
    return tuple(out)


def _foes(conns: dict[int, Any]) -> frozenset[tuple[int, int]]:
    """Pairs of tls links whose paths cross or merge, from the junction's own request table."""
    pairs = set()
    links = sorted(conns)
    # sumolib finds a junction index by scanning the node's lanes: look each up once.
    index = {k: conns[k].getJunctionIndex() for k in links}
    for i, a in enumerate(links):
        for b in links[i + 1 :]:
            ca, cb = conns[a], conns[b]
            node = ca.getJunction()
            if node is None or node is not cb.getJunction():
                continue
            ja, jb = index[a], index[b]
            if ja < 0 or jb < 0:
                continue
            try:
                if node.areFoes(ja, jb) or node.areFoes(jb, ja):
                    pairs.add((a, b))
            except (KeyError, IndexError):  # a request table without this link
                continue
    return frozenset(pairs)


def additional_programs(files: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """Programs a SUMO configuration loads after the network (`tlLogic` in its additional files):
    per light, {program id: sumolib program} in load order, as sumolib keeps a network's own. The
    network itself is not changed."""
    import sumolib

    out: dict[str, dict[str, Any]] = {}
    for path in files:
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            raise NetworkError(f"additional file {path}: cannot read it ({exc})") from exc
        for logic in root.iter("tlLogic"):
            program = sumolib.net.TLSProgram(
                logic.get("programID", "0"),
                float(logic.get("offset", "0")),
                logic.get("type", "static"),
            )
            for p in logic.iter("phase"):
                program.addPhase(
                    p.get("state", ""),
                    float(p.get("duration", "0")),
                    float(p.get("minDur", "-1")),
                    float(p.get("maxDur", "-1")),
                    name=p.get("name", ""),
                )
            for param in logic.iter("param"):
                program.setParam(param.get("key"), param.get("value"))
            out.setdefault(logic.get("id", ""), {})[logic.get("programID", "0")] = program
    return out


def program_ids(net: Any, tls_id: str, extra: Mapping[str, Any] | None = None) -> list[str]:
    """A tls's program ids in load order (network, then `extra` from additional files); SUMO
    starts with the last one it loads."""
    return [*net.getTLS(tls_id).getPrograms(), *(extra or {})]


def _programs(net: Any, tls_id: str, extra: Mapping[str, Any] | None) -> list[Any]:
    tls = net.getTLS(tls_id)
    programs = [*tls.getPrograms().values(), *(extra or {}).values()]
    if not programs:
        raise NetworkError(f"traffic light {tls_id} has no program in the network file")
    return programs


def _read(program: Any) -> list[Phase]:
    if program.getType() == NEMA_TYPE:  # one phase per movement group: written out as shown
        return written_out(ring_phases(program.getPhases()), program.getParams())
    return read_phases(program.getPhases())


def phases_of(
    net: Any, tls_id: str, extra: Mapping[str, Any] | None = None
) -> list[tuple[str, float, float, float]]:
    """(state, duration, min, max) of the program SUMO runs at start: the last one loaded."""
    return [
        (p.state, p.duration, p.min_dur, p.max_dur)
        for p in _read(_programs(net, tls_id, extra)[-1])
    ]
