"""The edgeward controller in the twin: real SUMO, real mosquitto, the coordinator, the ONNX
counter. Each fault moves the gateways to the right fallback and back, with zero unsafe
signal sequences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sim.traffic.edgeward_controller import EdgewardController
from sim.traffic.harness import RunConfig, run

pytestmark = [pytest.mark.sumo, pytest.mark.mqtt]

REPO = Path(__file__).resolve().parents[2]


def _run(
    out: Path, scenario: str, minutes: float, faults: list[str], registry: Path
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    controller = EdgewardController(registry=str(registry), counter="model")
    summary = run(
        RunConfig(
            scenario=scenario,
            controller="edgeward",
            minutes=minutes,
            out_dir=out,
            faults=faults,
            progress=False,
        ),
        controller=controller,
    )
    changes = json.loads((out / "mode_changes.json").read_text())
    report = json.loads((out / "edgeward" / "report.json").read_text())
    return summary, changes, report


def _mode_at(changes: list[dict[str, Any]], junction: str, t: float) -> str:
    mode = "fixed"
    for c in changes:
        if c["junction_id"] == junction and c["time"] <= t:
            mode = c["to_mode"]
    return mode


def _changes(changes: list[dict[str, Any]], junction: str, lo: float, hi: float) -> list[dict]:
    return [c for c in changes if c["junction_id"] == junction and lo <= c["time"] < hi]


def test_each_fault_triggers_its_fallback_and_recovery(tmp_path: Path, quick_registry: Path):
    faults = [
        "broker_down@40-80",
        "gateway_kill:B1@60-100",
        "camera:A0:north:frozen@190-300",
        "cloud_down@200-260",
    ]
    summary, changes, report = _run(tmp_path / "run", "grid:2x2", 6, faults, quick_registry)
    junctions = ["A0", "A1", "B0", "B1"]

    assert summary["safety_violations"] == 0, summary["safety_by_kind"]
    assert summary["mode_changes"] == len(changes)
    assert all(_mode_at(changes, j, 39) == "coordinated" for j in junctions)

    # broker lost: every gateway drops to local actuation at once, and climbs back after
    for j in junctions:
        drop = _changes(changes, j, 40, 50)
        assert [(c["to_mode"], c["reason"]) for c in drop] == [
            ("actuated", "broker disconnected")
        ], j
    for j in ["A0", "A1", "B0"]:
        assert _mode_at(changes, j, 199) == "coordinated", j

    # gateway killed: its junction runs the network's own program, a new gateway takes over
    kill = _changes(changes, "B1", 60, 61)
    assert kill and kill[0]["to_mode"] == "fixed" and "killed" in kill[0]["reason"]
    assert _mode_at(changes, "B1", 99) == "fixed"
    assert _mode_at(changes, "B1", 199) == "coordinated"

    # cloud lost: plans expire -> actuated; with a frozen camera too -> the fixed schedule
    for j in ["A1", "B0", "B1"]:
        assert _mode_at(changes, j, 259) == "actuated", j
        assert any("expired" in c["reason"] for c in _changes(changes, j, 200, 260)), j
    a0 = _changes(changes, "A0", 200, 260)
    assert [c["to_mode"] for c in a0] == ["fixed"]
    assert "camera north frozen" in a0[0]["reason"]
    assert all(_mode_at(changes, j, 359) == "coordinated" for j in junctions)

    # nothing the gateways sent while the broker was away was lost
    assert all(g["outbox_depth"] == 0 for g in report["gateways"].values())
    assert report["gateways"]["A0"]["aggregates"] >= 65


def test_edgeward_controls_the_irregular_network_safely(tmp_path: Path, quick_registry: Path):
    scenario = str(REPO / "sim/traffic/networks/irregular.sumocfg")
    summary, changes, report = _run(tmp_path / "run", scenario, 4, [], quick_registry)

    assert summary["safety_violations"] == 0, summary["safety_by_kind"]
    assert summary["throughput"] > 0
    coordinated = {c["junction_id"] for c in changes if c["to_mode"] == "coordinated"}
    assert coordinated == set(report["gateways"]) and len(coordinated) == summary["junctions"]
    errors = report["count_mae_per_approach"]
    assert errors, "the counter never ran"
    # the counter does better than one that always says "nobody there"
    mae = sum(e["queue_mae"] + e["approaching_mae"] for e in errors.values())
    zero = sum(e["queue_mean_truth"] + e["approaching_mean_truth"] for e in errors.values())
    assert mae < zero, errors


def test_a_city_network_with_long_joined_cluster_ids_runs_under_edgeward(tmp_path: Path) -> None:
    import sumo

    net = Path(sumo.SUMO_HOME) / "tools" / "game" / "DRT" / "osm.net.xml"
    controller = EdgewardController(counter="truth")
    summary = run(
        RunConfig(str(net), "edgeward", 2, tmp_path, profile="rush", progress=False),
        controller=controller,
    )
    report = json.loads((tmp_path / "edgeward" / "report.json").read_text())
    long_ids = [j for j in report["gateways"] if len(j) > 128]
    assert long_ids, sorted(report["gateways"])  # netconvert's joined-cluster ids
    assert all(report["gateways"][j]["aggregates"] > 0 for j in long_ids)
    assert [g["monitor_tripped"] for g in report["gateways"].values()] == [None] * len(
        report["gateways"]
    )
    assert summary["vehicles"] > 50
    violations = json.loads((tmp_path / "safety.json").read_text())
    hard = {"no_red_clearance", "conflicting_greens", "green_to_red", "short_yellow"}
    ours = [v for v in violations if v["junction_id"] in report["gateways"] and v["kind"] in hard]
    assert ours == []
