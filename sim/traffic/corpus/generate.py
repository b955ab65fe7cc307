"""Build the corpus of test networks: netconvert from plain XML written here, trips from
SUMO's own randomTrips.py with a fixed seed, one .sumocfg each.

The shapes are the ones real cities have and the generated grid does not: irregular angles
and missing links, an arterial whose programs carry offsets, a five-leg junction, joined
clusters (netconvert's long `cluster_...` ids), pedestrian crossings, one traffic light over
two junctions with a second program, unsignalised neighbours beside signalised ones, and a
divided boulevard imported from an OSM extract as osmWebWizard imports one (actuated
programs, turn lanes, a tram: `osm_extract.py`).
The networks come from netconvert's own programs (3 s yellows, no all-red), as a user's do.

    python -m sim.traffic.corpus.generate OUT_DIR [--seed N] [--seconds S]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sim.traffic.corpus import osm_extract
from sim.traffic.sumo_bin import SumoToolError, run_tool

Node = tuple[str, float, float, str]  # id, x, y, type
Edge = tuple[str, str, int]  # from, to, lanes (both directions are built)

# Long node ids, like OSM's: a joined cluster of four is named after all of them (> 128 chars).
_OSM = ["osm_node_3064841870_residential_way_", "osm_node_3064841901_primary_way_"]


@dataclass
class Plan:
    """One network: nodes and two-way streets, plus extra netconvert options."""

    nodes: list[Node]
    edges: list[Edge]
    options: list[str] = field(default_factory=list)
    sidewalks: bool = False
    post: Callable[[Path], None] | None = None  # rewrites the written .net.xml
    osm: Callable[[Path], Path] | None = None  # writes an OSM extract to import instead


def _irregular_grid() -> Plan:
    """3x3 signalised junctions jittered off the grid, two links missing, a priority corner."""
    rng = random.Random(11)
    nodes: list[Node] = []
    for r in range(3):
        for c in range(3):
            kind = "priority" if (r, c) == (2, 2) else "traffic_light"
            x, y = c * 220 + rng.uniform(-50, 50), r * 200 + rng.uniform(-45, 45)
            nodes.append((f"g{r}{c}", round(x, 1), round(y, 1), kind))
    edges: list[Edge] = []
    for r in range(3):
        for c in range(3):
            if c < 2 and (r, c) != (1, 0):  # a missing block gives a three-leg junction
                edges.append((f"g{r}{c}", f"g{r}{c + 1}", 1 + (r == 1)))
            if r < 2 and (r, c) != (0, 2):
                edges.append((f"g{r}{c}", f"g{r + 1}{c}", 1))
    for i in range(3):  # fringe roads in and out of the grid
        nodes += [(f"w{i}", -250.0, i * 200.0, "priority"), (f"e{i}", 700.0, i * 200.0, "priority")]
        edges += [(f"w{i}", f"g{i}0", 1), (f"g{i}2", f"e{i}", 1)]
        nodes += [(f"s{i}", i * 220.0, -230.0, "priority"), (f"n{i}", i * 220.0, 630.0, "priority")]
        edges += [(f"s{i}", f"g0{i}", 1), (f"g2{i}", f"n{i}", 1)]
    return Plan(nodes, edges)


def _arterial_offsets() -> Plan:
    """Four signals on a 2-lane arterial at uneven spacing, each program with its own offset."""
    xs = [0.0, 180.0, 470.0, 640.0]
    nodes: list[Node] = [(f"a{i}", x, 0.0, "traffic_light") for i, x in enumerate(xs)]
    nodes += [("west", -300.0, 0.0, "priority"), ("east", 940.0, 0.0, "priority")]
    edges: list[Edge] = [("west", "a0", 2), ("a3", "east", 2)]
    edges += [(f"a{i}", f"a{i + 1}", 2) for i in range(3)]
    for i, x in enumerate(xs):
        nodes += [(f"an{i}", x, 200.0, "priority"), (f"as{i}", x + 15.0, -200.0, "priority")]
        edges += [(f"an{i}", f"a{i}", 1), (f"as{i}", f"a{i}", 1)]
    return Plan(nodes, edges, post=_set_offsets({f"a{i}": 13 * i for i in range(4)}))


def _five_leg() -> Plan:
    legs = [(0.0, 240.0), (230.0, 80.0), (140.0, -200.0), (-150.0, -190.0), (-230.0, 70.0)]
    nodes: list[Node] = [("five", 0.0, 0.0, "traffic_light")]
    nodes += [(f"leg{i}", x, y, "priority") for i, (x, y) in enumerate(legs)]
    return Plan(nodes, [(f"leg{i}", "five", 1 + (i % 2)) for i in range(5)])


def _joined_cluster() -> Plan:
    """A dual carriageway crossing: four signalised nodes 12 m apart become one cluster."""
    sq = [(-6.0, -6.0), (6.0, -6.0), (6.0, 6.0), (-6.0, 6.0)]
    ids = [f"{_OSM[i % 2]}{i}" for i in range(4)]
    nodes: list[Node] = [(n, x, y, "traffic_light") for n, (x, y) in zip(ids, sq, strict=True)]
    nodes += [("cw", -250.0, 0.0, "priority"), ("ce", 250.0, 0.0, "priority")]
    nodes += [("cs", 0.0, -250.0, "priority"), ("cn", 0.0, 250.0, "priority")]
    nodes += [("sig2", 260.0 + 200.0, 0.0, "traffic_light"), ("far", 700.0, 0.0, "priority")]
    edges: list[Edge] = [(ids[i], ids[(i + 1) % 4], 1) for i in range(4)]
    edges += [("cw", ids[0], 1), ("cs", ids[1], 1), (ids[2], "cn", 1), (ids[2], "ce", 1)]
    edges += [("ce", "sig2", 1), ("sig2", "far", 1)]
    nodes += [("s2n", 460.0, 200.0, "priority"), ("s2s", 460.0, -200.0, "priority")]
    edges += [("s2n", "sig2", 1), ("s2s", "sig2", 1)]
    return Plan(nodes, edges, options=["--junctions.join", "--tls.join"])


def _crossings() -> Plan:
    """Two signalised junctions with sidewalks on every leg: pedestrian crossings and walks."""
    nodes: list[Node] = [("p0", 0.0, 0.0, "traffic_light"), ("p1", 250.0, 20.0, "traffic_light")]
    nodes += [("pw", -220.0, 0.0, "priority"), ("pe", 480.0, 20.0, "priority")]
    for i, x in enumerate([0.0, 250.0]):
        nodes += [(f"pn{i}", x, 200.0, "priority"), (f"ps{i}", x, -200.0, "priority")]
    edges: list[Edge] = [("pw", "p0", 2), ("p0", "p1", 2), ("p1", "pe", 2)]
    edges += [(f"pn{i}", f"p{i}", 1) for i in range(2)] + [(f"ps{i}", f"p{i}", 1) for i in range(2)]
    return Plan(nodes, edges, sidewalks=True, options=["--crossings.guess"])


def _shared_light() -> Plan:
    """One traffic light over two junctions 60 m apart (a node `tl` shared), two programs,
    and an unsignalised T next door."""
    nodes: list[Node] = [("m0", 0.0, 0.0, "traffic_light"), ("m1", 60.0, 0.0, "traffic_light")]
    nodes += [("mw", -250.0, 0.0, "priority"), ("me", 320.0, 0.0, "priority")]
    nodes += [("mn0", 0.0, 220.0, "priority"), ("ms1", 60.0, -220.0, "priority")]
    nodes += [("t", 320.0 - 120.0, 0.0, "priority"), ("tn", 200.0, 200.0, "priority")]
    edges: list[Edge] = [("mw", "m0", 1), ("m0", "m1", 1), ("m1", "t", 1), ("t", "me", 1)]
    edges += [("mn0", "m0", 1), ("ms1", "m1", 1), ("tn", "t", 1)]
    return Plan(nodes, edges, post=_second_program("m0"))


def _osm_boulevard() -> Plan:
    """A divided boulevard mapped as OSM maps it, imported as osmWebWizard imports it."""
    return Plan([], [], sidewalks=True, osm=osm_extract.boulevard)


PLANS: dict[str, Callable[[], Plan]] = {
    "irregular_grid": _irregular_grid,
    "arterial_offsets": _arterial_offsets,
    "five_leg": _five_leg,
    "joined_cluster": _joined_cluster,
    "crossings": _crossings,
    "shared_light": _shared_light,
    "osm_boulevard": _osm_boulevard,
}


def _set_offsets(offsets: dict[str, int]) -> Callable[[Path], None]:
    def post(net: Path) -> None:
        tree = ET.parse(net)
        for tl in tree.getroot().iter("tlLogic"):
            if tl.get("id") in offsets:
                tl.set("offset", str(offsets[tl.get("id", "")]))
        tree.write(net, encoding="UTF-8", xml_declaration=True)

    return post


def _second_program(tls: str) -> Callable[[Path], None]:
    """Add an "evening" program (greens swapped in length) after the default one; SUMO and the
    twin run the last program loaded, so this one is live."""

    def post(net: Path) -> None:
        tree = ET.parse(net)
        root = tree.getroot()
        logics = list(root.iter("tlLogic"))
        first = next(tl for tl in logics if tl.get("id") == tls)
        second = ET.fromstring(ET.tostring(first))
        second.set("programID", "evening")
        greens = [p for p in second if "G" in p.get("state", "") and "y" not in p.get("state", "")]
        for p, q in zip(greens, reversed(greens), strict=True):
            p.set("duration", q.get("duration", "30"))
        kids = list(root)
        root.insert(kids.index(first) + 1, second)
        tree.write(net, encoding="UTF-8", xml_declaration=True)

    return post


def _write_plain(plan: Plan, d: Path, name: str) -> tuple[Path, Path]:
    nod = ET.Element("nodes")
    for nid, x, y, kind in plan.nodes:
        attrs = {"id": nid, "x": str(x), "y": str(y), "type": kind}
        if name == "shared_light" and nid in ("m0", "m1"):
            attrs["tl"] = "m0"  # one light for both junctions
        ET.SubElement(nod, "node", attrs)
    edg = ET.Element("edges")
    for a, b, lanes in plan.edges:
        for u, v in ((a, b), (b, a)):
            attrs = {"id": f"{u}_to_{v}", "from": u, "to": v, "numLanes": str(lanes)}
            attrs["speed"] = "13.89"
            if plan.sidewalks:
                attrs["sidewalkWidth"] = "2.0"
            ET.SubElement(edg, "edge", attrs)
    nod_file, edg_file = d / f"{name}.nod.xml", d / f"{name}.edg.xml"
    ET.ElementTree(nod).write(nod_file, encoding="UTF-8", xml_declaration=True)
    ET.ElementTree(edg).write(edg_file, encoding="UTF-8", xml_declaration=True)
    return nod_file, edg_file


def _random_trips(
    net: Path, out: Path, *, seed: int, seconds: int, period: float, walkers: bool = False
) -> None:
    import sumo

    script = Path(sumo.SUMO_HOME) / "tools" / "randomTrips.py"
    net, out = net.resolve(), out.resolve()  # it runs in the output folder (see below)
    args = [sys.executable, str(script), "-n", str(net), "-o", str(out), "--seed", str(seed)]
    args += ["-b", "0", "-e", str(seconds), "-p", str(period)]
    if walkers:  # people on foot, so the crossings' walk phases are used
        args += ["--pedestrians", "--prefix", "ped", "--min-distance", "100"]
    else:
        args += ["--fringe-factor", "10", "--min-distance", "150", "--validate"]
        args += ["--remove-loops"]
    # --validate writes routes.rou.xml into the working directory: keep it beside the network
    proc = subprocess.run(
        args, capture_output=True, text=True, check=False, timeout=300, cwd=out.parent
    )
    if proc.returncode != 0 or not out.exists():
        raise SumoToolError(f"randomTrips.py on {net} failed: {proc.stderr.strip()[-500:]}")


def build(name: str, out_dir: Path, *, seed: int = 42, seconds: int = 600) -> Path:
    """Write OUT_DIR/NAME.net.xml, NAME.trips.xml and NAME.sumocfg; return the .sumocfg."""
    if name not in PLANS:
        raise SumoToolError(f"corpus network {name!r} is unknown; use one of {', '.join(PLANS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = PLANS[name]()
    net = out_dir / f"{name}.net.xml"
    if plan.osm is not None:
        osm_extract.import_osm(plan.osm(out_dir / f"{name}.osm.xml"), net)
    else:
        nod, edg = _write_plain(plan, out_dir, name)
        args = ["-n", str(nod), "-e", str(edg), "--no-turnarounds"]
        args += ["--offset.disable-normalization", *plan.options]
        run_tool("netconvert", args, f"corpus network {name}", output=net)
    if plan.post is not None:
        plan.post(net)
    trips = out_dir / f"{name}.trips.xml"
    _random_trips(net, trips, seed=seed, seconds=seconds, period=2.0)
    routes = [trips.name]
    if plan.sidewalks:
        walks = out_dir / f"{name}.walks.xml"
        _random_trips(net, walks, seed=seed, seconds=seconds, period=6.0, walkers=True)
        routes.append(walks.name)
    cfg = out_dir / f"{name}.sumocfg"
    cfg.write_text(
        "<configuration>\n  <input>\n"
        f'    <net-file value="{net.name}"/>\n'
        f'    <route-files value="{",".join(routes)}"/>\n'
        "  </input>\n</configuration>\n"
    )
    return cfg


def build_all(out_dir: Path, *, seed: int = 42, seconds: int = 600) -> dict[str, Path]:
    return {n: build(n, out_dir, seed=seed, seconds=seconds) for n in PLANS}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--seed", type=int, default=42, help="randomTrips.py seed (default 42)")
    p.add_argument("--seconds", type=int, default=600, help="trip departures until (default 600)")
    p.add_argument("--only", action="append", choices=list(PLANS), help="build only these")
    args = p.parse_args(argv)
    for name in args.only or list(PLANS):
        print(build(name, args.out_dir, seed=args.seed, seconds=args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
