"""A gateway reads its light's conflict matrix from the .net.xml without SUMO, and gets what
sumolib's request tables give, on a hand-built network and a real city extract."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.traffic.network_conflicts import NetworkConflictError, conflicts_from_net
from sim.traffic.network import junctions_of, read_net
from sim.traffic.safety import conflicts_of

REPO = Path(__file__).resolve().parents[2]


def _city() -> Path:
    import sumo

    return Path(sumo.SUMO_HOME) / "tools" / "game" / "DRT" / "osm.net.xml"


@pytest.mark.parametrize(
    "net",
    [
        REPO / "sim/traffic/networks/irregular.net.xml",
        pytest.param(_city(), marks=pytest.mark.slow),  # sumolib reads a city in ~30 s
    ],
)
def test_conflicts_from_the_net_file_match_sumolib_for_every_light(net: Path) -> None:
    junctions = junctions_of(read_net(net))
    assert junctions
    for j in junctions:
        ours = conflicts_from_net(net, j.junction_id)
        theirs = conflicts_of(j.layout)
        assert (ours.n_links, ours.foes, ours.crossings) == (
            theirs.n_links,
            theirs.foes,
            theirs.crossings,
        ), j.junction_id
    assert any(conflicts_from_net(net, j.junction_id).foes for j in junctions)


def test_unknown_light_and_missing_file_say_what_to_check(tmp_path: Path) -> None:
    net = REPO / "sim/traffic/networks/irregular.net.xml"
    with pytest.raises(NetworkConflictError, match=r"'nope'.*check the junction id"):
        conflicts_from_net(net, "nope")
    with pytest.raises(NetworkConflictError, match="does not exist"):
        conflicts_from_net(tmp_path / "missing.net.xml", "J1")
    bad = tmp_path / "bad.net.xml"
    bad.write_text("<net><edge id='a'")
    with pytest.raises(NetworkConflictError, match="not a readable SUMO network"):
        conflicts_from_net(bad, "J1")
