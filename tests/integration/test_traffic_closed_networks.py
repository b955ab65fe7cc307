"""A network with no dead ends (netgenerate's grids, a ring road, a city cut along its boundary
streets) still gets demand: trips enter and leave at the edge of the map, never in its middle.
Before, `edgeward sim traffic` on such a network without routes stopped at "no fringe edges".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sim.traffic.demand import generate_trips
from tests.sim_cli import edgeward_run, signal_grid

pytestmark = pytest.mark.sumo


def _closed_grid(tmp_path: Path, n: int) -> Path:
    """An n x n signalised grid whose outer junctions join only grid roads (no dead ends)."""
    return signal_grid(
        tmp_path / f"closed{n}.net.xml", n, "--grid.length", "150", "--no-turnarounds"
    )


def _load(net_file: Path) -> Any:
    import sumolib

    return sumolib.net.readNet(str(net_file))


def test_trips_on_a_network_without_dead_ends_start_and_end_on_its_boundary(
    tmp_path: Path,
) -> None:
    net = _load(_closed_grid(tmp_path, 4))
    trips_file = tmp_path / "trips.xml"
    n = generate_trips(net, trips_file, profile="steady", seconds=600, veh_per_hour=200, seed=3)
    trips = ET.parse(trips_file).getroot().findall("trip")
    assert n == len(trips) > 0
    # a 4x4 grid at 150 m: the outer ring of 12 junctions is the map's edge, the 4 inside are not
    inner = {
        node.getID() for node in net.getNodes() if all(0 < c < 450 for c in node.getCoord()[:2])
    }
    assert len(inner) == 4
    origins = Counter(net.getEdge(t.get("from")).getFromNode().getID() for t in trips)
    ends = Counter(net.getEdge(t.get("to")).getToNode().getID() for t in trips)
    assert not inner & set(origins), "a trip started in the middle of the map"
    assert not inner & set(ends), "a trip ended in the middle of the map"
    assert len(origins) == 12, f"some boundary junctions feed nothing: {sorted(origins)}"
    # each boundary junction feeds about what one fringe road would: 200 veh/h x 10 min
    assert max(origins.values()) < 3 * min(origins.values())
    assert 0.6 * 12 * 200 / 6 < n < 1.4 * 12 * 200 / 6


def test_edgeward_runs_a_closed_grid_without_routes(tmp_path: Path) -> None:
    net = _closed_grid(tmp_path, 3)
    summary = edgeward_run(net, tmp_path / "run", "2")
    assert summary["vehicles"] > 0 and summary["throughput"] > 0
    assert summary["safety_violations"] == 0
