"""A traffic light's conflict matrix read straight from a SUMO .net.xml (stdlib only, so a
gateway needs no SUMO): each junction's `<request index=.. foes=..>` table, mapped to the light's
link indices through the `<connection tl=.. linkIndex=..>` elements."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import EdgewardError
from shared.traffic.conflicts import ConflictMatrix


class NetworkConflictError(EdgewardError):
    """The network file cannot give this light's conflicts."""


@dataclass
class _Conn:
    from_edge: str
    from_lane: int
    to_edge: str
    tl: str
    link: int


@dataclass
class _Net:
    functions: dict[str, str] = field(default_factory=dict)  # edge -> function ("" normal)
    to_node: dict[str, str] = field(default_factory=dict)  # edge -> the node it ends at
    inc_lanes: dict[str, list[str]] = field(default_factory=dict)  # junction -> incLanes
    foes: dict[str, dict[int, str]] = field(default_factory=dict)  # junction -> index -> foes
    by_lane: dict[tuple[str, int], list[_Conn]] = field(default_factory=dict)
    tls_links: dict[str, int] = field(default_factory=dict)  # light -> its number of links


def _take(net: _Net, el: ET.Element) -> None:
    """Note what one element of the network says about edges, junctions and connections."""
    if el.tag == "edge":
        eid = el.get("id", "")
        net.functions[eid] = el.get("function", "")
        net.to_node[eid] = el.get("to", "")
    elif el.tag == "junction":
        jid = el.get("id", "")
        net.inc_lanes[jid] = el.get("incLanes", "").split()
        net.foes[jid] = {int(r.get("index", "-1")): r.get("foes", "") for r in el.iter("request")}
    elif el.tag == "connection":
        conn = _Conn(
            el.get("from", ""),
            int(el.get("fromLane", "-1")),
            el.get("to", ""),
            el.get("tl", ""),
            int(el.get("linkIndex", "-1")),
        )
        net.by_lane.setdefault((conn.from_edge, conn.from_lane), []).append(conn)
        if conn.tl:
            net.tls_links[conn.tl] = max(net.tls_links.get(conn.tl, 0), conn.link + 1)


def _unreadable(where: object, exc: Exception) -> NetworkConflictError:
    return NetworkConflictError(
        f"network file {where} is not a readable SUMO network ({exc}); give a .net.xml "
        "written by netconvert"
    )


def _read(path: Path) -> _Net:
    if not path.is_file():
        raise NetworkConflictError(f"network file {path} does not exist; give the .net.xml")
    net = _Net()
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for _, el in ET.iterparse(fh, events=("end",)):
                _take(net, el)
                if el.tag == "junction":
                    el.clear()  # streamed: a city's request tables need not stay in memory
    except (ET.ParseError, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from exc
    return net


def _junction_links(net: _Net, junction: str) -> list[_Conn]:
    """The junction's connections in its request-table order (SUMO's, as sumolib counts it)."""
    out = []
    for lane in net.inc_lanes.get(junction, []):
        edge, _, index = lane.rpartition("_")
        if not edge or not index.isdigit():
            continue
        for c in net.by_lane.get((edge, int(index)), []):
            src, dst = net.functions.get(c.from_edge, ""), net.functions.get(c.to_edge, "")
            if dst == "walkingarea" or (src == "walkingarea" and dst != "crossing"):
                continue
            out.append(c)
    return out


def conflicts_from_net(path: Path, tls_id: str) -> ConflictMatrix:
    """The conflict matrix of traffic light `tls_id` in network `path`."""
    matrices = conflicts_by_light(path)
    if tls_id not in matrices:
        raise NetworkConflictError(
            f"network file {path} has no connection controlled by traffic light {tls_id!r}; "
            "check the junction id"
        )
    return matrices[tls_id]


def conflicts_by_light(path: Path) -> dict[str, ConflictMatrix]:
    """The conflict matrix of every traffic light in network `path`, read in one pass."""
    return _matrices(_read(path))


def conflicts_in(root: ET.Element) -> dict[str, ConflictMatrix]:
    """The same from a network already parsed (left as it is)."""
    net = _Net()
    try:
        for el in root.iter():
            _take(net, el)
    except ValueError as exc:
        raise _unreadable("(parsed)", exc) from exc
    return _matrices(net)


def _matrices(net: _Net) -> dict[str, ConflictMatrix]:
    pairs: dict[str, set[tuple[int, int]]] = {tl: set() for tl in net.tls_links}
    crossings: dict[str, set[int]] = {tl: set() for tl in net.tls_links}
    for junction in net.inc_lanes:
        links = _junction_links(net, junction)
        ours = [(j, c) for j, c in enumerate(links) if c.tl and c.link >= 0]
        table = net.foes.get(junction, {})
        for j, c in ours:
            if "crossing" in (net.functions.get(c.from_edge), net.functions.get(c.to_edge)):
                crossings[c.tl].add(c.link)
            row = table.get(j, "")
            for k, d in ours:
                # foes strings run from the highest index down to 0
                if (
                    k != j
                    and d.tl == c.tl
                    and len(row) > k
                    and row[len(row) - 1 - k] == "1"
                    and c.link != d.link
                ):
                    pairs[c.tl].add((min(c.link, d.link), max(c.link, d.link)))
    return {tl: ConflictMatrix.of(n, pairs[tl], crossings[tl]) for tl, n in net.tls_links.items()}
