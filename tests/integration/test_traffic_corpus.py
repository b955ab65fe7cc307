"""Every network of the netconvert corpus (sim/traffic/corpus) describes and runs under
edgeward through the real CLI, with 0 violations from the independent SUMO monitor."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edge.traffic.program import protected_foes
from shared.traffic.network_conflicts import conflicts_from_net
from sim.traffic.corpus.generate import PLANS, build_all
from tests.sim_cli import sim_traffic

pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("corpus"), seed=42, seconds=240)


def _lights(net: Path) -> dict[str, list[str]]:
    """Traffic-light id -> its program ids, read from the .net.xml itself."""
    out: dict[str, list[str]] = {}
    for tl in ET.parse(net).getroot().iter("tlLogic"):
        out.setdefault(tl.get("id", ""), []).append(tl.get("programID", ""))
    return out


def _releasing_foes(net: Path) -> set[str]:
    """Lights whose own program has a phase giving protected green to two foes (read from
    the network file's request tables, as a real gateway reads them)."""
    out = set()
    for tl in ET.parse(net).getroot().iter("tlLogic"):
        foes = conflicts_from_net(net, tl.get("id", ""))
        if any(protected_foes(p.get("state", ""), foes) for p in tl.iter("phase")):
            out.add(tl.get("id", ""))
    return out


def test_the_corpus_has_the_shapes_real_cities_have(corpus: dict[str, Path]) -> None:
    nets = {n: cfg.with_suffix("").with_suffix(".net.xml") for n, cfg in corpus.items()}
    cluster = [t for t in _lights(nets["joined_cluster"]) if t.startswith("cluster_")]
    assert cluster and len(cluster[0]) > 128  # longer than the old 128-character limit
    assert _lights(nets["shared_light"])["m0"] == ["0", "evening"]
    root = ET.parse(nets["shared_light"]).getroot()
    assert {j.get("id") for j in root.iter("junction") if j.get("type") == "traffic_light"} == {
        "m0",
        "m1",
    }  # one light, two junctions; "t" beside them has none
    offsets = [tl.get("offset") for tl in ET.parse(nets["arterial_offsets"]).iter("tlLogic")]
    assert offsets == ["0", "13", "26", "39"]
    crossings = ET.parse(nets["crossings"]).getroot()
    assert any(e.get("function") == "crossing" for e in crossings.iter("edge"))
    assert "walks" in corpus["crossings"].read_text()
    five = [j for j in ET.parse(nets["five_leg"]).iter("junction") if j.get("id") == "five"]
    legs = {lane.rsplit("_", 1)[0] for lane in five[0].get("incLanes", "").split()}
    assert len(legs) == 5
    osm = ET.parse(nets["osm_boulevard"]).getroot()
    assert {tl.get("type") for tl in osm.iter("tlLogic")} == {"actuated"}  # the wizard's
    assert any(e.get("function") == "crossing" for e in osm.iter("edge"))
    # a divided road's joined clusters whose protected lefts are foes in netconvert's own table
    assert len(_releasing_foes(nets["osm_boulevard"])) >= 2


@pytest.mark.parametrize("name", list(PLANS))
def test_describe_and_a_short_edgeward_run_are_safe(
    corpus: dict[str, Path], tmp_path: Path, name: str
) -> None:
    cfg = corpus[name]
    net = cfg.with_suffix("").with_suffix(".net.xml")
    lights = _lights(net)

    described = sim_traffic("--scenario", str(cfg), "--describe")
    heads = {ln.split(": ")[0] for ln in described.splitlines() if not ln.startswith(" ")}
    assert heads == set(lights), described
    head, never_shown = "", set()
    for ln in described.splitlines():
        head = ln.split(": ")[0] if not ln.startswith(" ") else head
        if "edgeward never shows it" in ln:
            never_shown.add(head)
    assert never_shown == _releasing_foes(net), described  # said before the run, too
    if name == "shared_light":  # SUMO runs the last program loaded; describe says which
        assert "program 'evening' of ['0', 'evening']" in described, described

    out = tmp_path / "run"
    sim_traffic(
        "--scenario", str(cfg), "--controller", "edgeward", "--counter", "truth",
        "--minutes", "2", "--seed", "5", "--out", str(out), "--no-progress",
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["safety_violations"] == 0, summary["safety_by_kind"]
    assert json.loads((out / "safety.json").read_text()) == []
    assert summary["junctions"] == len(lights)
    assert summary["throughput"] > 0
    report = json.loads((out / "edgeward" / "report.json").read_text())
    assert set(report["gateways"]) == set(lights)
    assert [g["monitor_tripped"] for g in report["gateways"].values()] == [None] * len(lights)
    changes = json.loads((out / "mode_changes.json").read_text())
    assert not [c for c in changes if "refused" in c["reason"]], changes
    coordinated = {c["junction_id"] for c in changes if c["to_mode"] == "coordinated"}
    assert coordinated == set(lights)  # the applier drove every light, none kept its own
    # ... without the phases that release two foes together, and the summary says where
    assert set(summary["phases_left_out"]) == _releasing_foes(net)
