"""A benchmark scenario often loads its signal programs from an additional file named in the
.sumocfg, after the network's own; SUMO runs the last loaded. `--describe` names and counts that
program's phases, not the network file's (before, it read the network file alone)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.sim_cli import signal_grid, sim_traffic

pytestmark = pytest.mark.sumo


def test_describe_shows_the_program_an_additional_file_loads_last(tmp_path: Path) -> None:
    net = signal_grid(tmp_path / "city.net.xml", 2, "--grid.attach-length", "100")
    own = {tl.get("id", ""): tl for tl in ET.parse(net).getroot().iter("tlLogic")}
    assert "A0" in own
    # the scenario's own timing plan: every light's cycle run twice over, as program "peak"
    add = ET.Element("additional")
    for tls_id, logic in own.items():
        peak = ET.SubElement(add, "tlLogic", {"id": tls_id, "type": "static", "programID": "peak"})
        for phase in [*logic.iter("phase")] * 2:
            ET.SubElement(peak, "phase", {"duration": "20", "state": phase.get("state", "")})
    ET.ElementTree(add).write(tmp_path / "peak.add.xml")
    (tmp_path / "city.rou.xml").write_text("<routes/>")
    (tmp_path / "city.sumocfg").write_text(
        '<configuration><input><net-file value="city.net.xml"/>'
        '<route-files value="city.rou.xml"/><additional-files value="peak.add.xml"/></input>'
        "</configuration>"
    )
    own_phases = len(list(own["A0"].iter("phase")))
    described = sim_traffic("--scenario", str(tmp_path / "city.sumocfg"), "--describe")
    a0 = next(line for line in described.splitlines() if line.startswith("A0:"))
    assert f"{2 * own_phases} phases (program 'peak' of ['0', 'peak'])" in a0, a0


def test_a_killed_gateways_light_goes_back_to_the_program_it_ran(tmp_path: Path) -> None:
    # Each light runs "peak", loaded last: the network's own cycle with 4 s yellows and 2 s of
    # all-red after each, within edgeward's envelope. Its gateway dies and the light must run
    # "peak" again; before, it went to the first program loaded, netconvert's "0" (3 s yellows,
    # no red clearance), and the monitor counted that program's violations.
    net = signal_grid(tmp_path / "city.net.xml", 2, "--grid.attach-length", "100")
    add = ET.Element("additional")
    for logic in ET.parse(net).getroot().iter("tlLogic"):
        peak = ET.SubElement(
            add, "tlLogic", {"id": logic.get("id", ""), "type": "static", "programID": "peak"}
        )
        for phase in logic.iter("phase"):
            state = phase.get("state", "")
            yellow = "y" in state
            ET.SubElement(peak, "phase", {"duration": "4" if yellow else "20", "state": state})
            if yellow:
                red = "".join("r" if c == "y" else c for c in state)
                ET.SubElement(peak, "phase", {"duration": "2", "state": red})
    ET.ElementTree(add).write(tmp_path / "peak.add.xml")
    (tmp_path / "city.rou.xml").write_text("<routes/>")
    (tmp_path / "city.sumocfg").write_text(
        '<configuration><input><net-file value="city.net.xml"/>'
        '<route-files value="city.rou.xml"/><additional-files value="peak.add.xml"/></input>'
        "</configuration>"
    )
    out = tmp_path / "run"
    kills = [f for j in ("A0", "A1", "B0", "B1") for f in ("--fault", f"gateway_kill:{j}@61-100")]
    sim_traffic(
        "--scenario", str(tmp_path / "city.sumocfg"), "--controller", "edgeward",
        "--counter", "truth", "--minutes", "2", "--no-progress", "--out", str(out), *kills,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faults"] == [k for k in kills if k != "--fault"]
    assert summary["mode_changes"] >= 8  # each light released and taken back
    assert summary["safety_violations"] == 0
