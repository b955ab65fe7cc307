"""A city street network as OpenStreetMap maps it, imported the way SUMO's osmWebWizard does.

Real-city SUMO networks mostly come from OSM through netconvert's OSM import, not from plain
XML: signals mapped as tagged nodes, divided roads as two one-way ways (joined into one
`cluster_...` junction), turn lanes from `turn:lanes`, sidewalks from `sidewalk=*`, a tram
in the median, and actuated programs (`--tls.default-type actuated`). This writes such an
extract (a boulevard crossed by five streets) and imports it with the wizard's options.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from sim.traffic.sumo_bin import run_tool

LAT0, LON0 = 48.14, 11.56
_M_LAT = 1 / 111_320
_M_LON = 1 / (111_320 * math.cos(math.radians(LAT0)))

# osmBuild.DEFAULT_NETCONVERT_OPTS plus what osmWebWizard adds for cars, walkers and bikes
WIZARD_OPTIONS = [
    "--geometry.remove", "--ramps.guess", "--junctions.join", "--tls.guess-signals",
    "--tls.discard-simple", "--tls.join", "--output.original-names", "--output.street-names",
    "--tls.default-type", "actuated", "--crossings.guess", "--osm.sidewalks",
    "--osm.bike-access", "--osm.turn-lanes", "--proj.utm",
]  # fmt: skip
TYPEMAPS = ("osmNetconvert", "osmNetconvertUrbanDe", "osmNetconvertPedestrians")


class _Extract:
    def __init__(self) -> None:
        self.root = ET.Element("osm", {"version": "0.6", "generator": "edgeward corpus"})
        self._ways: list[ET.Element] = []
        self._next = 1000

    def node(self, x: float, y: float, **tags: str) -> int:
        self._next += 1
        lat, lon = f"{LAT0 + y * _M_LAT:.7f}", f"{LON0 + x * _M_LON:.7f}"
        el = ET.SubElement(self.root, "node", {"id": str(self._next), "lat": lat, "lon": lon})
        el.set("version", "1")
        for k, v in tags.items():
            ET.SubElement(el, "tag", {"k": k.replace("_", ":"), "v": v})
        return self._next

    def way(self, nodes: list[int], **tags: str) -> None:
        el = ET.Element("way", {"id": str(5000 + len(self._ways)), "version": "1"})
        for n in nodes:
            ET.SubElement(el, "nd", {"ref": str(n)})
        for k, v in tags.items():
            ET.SubElement(el, "tag", {"k": k.replace("_", ":"), "v": v})
        self._ways.append(el)

    def write(self, path: Path) -> None:
        self.root.extend(self._ways)  # OSM lists nodes before ways
        ET.ElementTree(self.root).write(path, encoding="UTF-8", xml_declaration=True)


# Where the four cross streets meet the boulevard, and where their far ends lie (x, y) in
# metres: a narrow median (15.4 m) and cross streets a little off the perpendicular, as
# surveyed streets are. At two of them netconvert's protected-left phase releases opposite
# left turns whose paths pass within a vehicle's width: foes in its own request table.
MEDIAN_M = 15.4
CROSSINGS_X = (0.0, 261.0, 512.0, 688.0, 904.0)
FAR_ENDS = (
    ((8.9, 203.7), (17.8, -195.9)),
    ((241.4, 191.5), (261.8, -193.7)),
    ((504.7, 203.0), (506.3, -248.3)),
    ((681.5, 216.3), (692.5, -236.0)),
    ((896.3, 203.1), (905.4, -232.6)),
)


def boulevard(path: Path) -> Path:
    """A divided boulevard (two 3-lane one-way carriageways with left-turn lanes) crossed by
    five two-way streets, signals at every crossing, a signalled foot crossing, a median tram."""
    osm = _Extract()
    half = MEDIAN_M / 2
    north = [osm.node(x, half, highway="traffic_signals") for x in CROSSINGS_X]
    south = [osm.node(x, -half, highway="traffic_signals") for x in CROSSINGS_X]
    main = {
        "highway": "primary", "oneway": "yes", "lanes": "3", "maxspeed": "50",
        "sidewalk": "right", "turn_lanes": "left|through|through;right", "name": "Boulevard",
    }  # fmt: skip
    for i in range(len(CROSSINGS_X) - 1):
        osm.way([north[i + 1], north[i]], **main)  # westbound on the north carriageway
        osm.way([south[i], south[i + 1]], **main)
    for i, (top, bottom) in enumerate(FAR_ENDS):
        street = {"highway": "secondary" if i % 2 == 0 else "tertiary", "lanes": "2"}
        street |= {"maxspeed": "50", "sidewalk": "both", "name": f"Cross street {i}"}
        upper = [osm.node(*top), north[i]]
        if i == 2:  # a signalled foot crossing 25 m up the street
            foot = {"highway": "crossing", "crossing": "traffic_signals"}
            upper.insert(1, osm.node(CROSSINGS_X[i], half + 25, **foot))
        osm.way(upper, **street)
        osm.way([north[i], south[i]], **street)
        osm.way([south[i], osm.node(*bottom)], **street)
    osm.way([osm.node(x, 0.0) for x in CROSSINGS_X], railway="tram")
    osm.write(path)
    return path


def import_osm(osm_file: Path, net: Path) -> Path:
    """netconvert the extract as osmWebWizard would (its type maps and options)."""
    import sumo

    maps = Path(sumo.SUMO_HOME) / "data" / "typemap"
    types = ",".join(str(maps / f"{m}.typ.xml") for m in TYPEMAPS)
    args = ["--osm-files", str(osm_file), "--type-files", types, *WIZARD_OPTIONS]
    run_tool("netconvert", args, f"OSM import of {osm_file.name}", output=net)
    return net
