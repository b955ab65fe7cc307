"""A benchmark scenario often loads its signal programs from an additional file named in the
.sumocfg, after the network's own; SUMO runs the last loaded. `--describe` names and counts that
program's phases, not the network file's (before, it read the network file alone)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sim_cli import signal_grid, sim_traffic

pytestmark = pytest.mark.sumo


def _city_with_plan(
    tmp_path: Path, plan: Callable[[ET.Element], list[tuple[str, str]]]
) -> tuple[Path, dict[str, ET.Element]]:
    """A 2x2 grid whose .sumocfg loads `plan(own logic)` (state, duration) per light as program
    "peak" from an additional file; the scenario and the network's own logics."""
    net = signal_grid(tmp_path / "city.net.xml", 2, "--grid.attach-length", "100")
    own = {tl.get("id", ""): tl for tl in ET.parse(net).getroot().iter("tlLogic")}
    add = ET.Element("additional")
    for tls_id, logic in own.items():
        peak = ET.SubElement(add, "tlLogic", {"id": tls_id, "type": "static", "programID": "peak"})
        for state, duration in plan(logic):
            ET.SubElement(peak, "phase", {"duration": duration, "state": state})
    ET.ElementTree(add).write(tmp_path / "peak.add.xml")
    (tmp_path / "city.rou.xml").write_text("<routes/>")
    (tmp_path / "city.sumocfg").write_text(
        '<configuration><input><net-file value="city.net.xml"/>'
        '<route-files value="city.rou.xml"/><additional-files value="peak.add.xml"/></input>'
        "</configuration>"
    )
    return tmp_path / "city.sumocfg", own


def test_describe_shows_the_program_an_additional_file_loads_last(tmp_path: Path) -> None:
    # the scenario's own timing plan: every light's cycle run twice over, as program "peak"
    def twice(logic: ET.Element) -> list[tuple[str, str]]:
        return [(phase.get("state", ""), "20") for phase in [*logic.iter("phase")] * 2]

    scenario, own = _city_with_plan(tmp_path, twice)
    assert "A0" in own
    own_phases = len(list(own["A0"].iter("phase")))
    described = sim_traffic("--scenario", str(scenario), "--describe")
    a0 = next(line for line in described.splitlines() if line.startswith("A0:"))
    assert f"{2 * own_phases} phases (program 'peak' of ['0', 'peak'])" in a0, a0


def test_a_killed_gateways_light_goes_back_to_the_program_it_ran(tmp_path: Path) -> None:
    # Each light runs "peak", loaded last: the network's own cycle with 4 s yellows and 2 s of
    # all-red after each, within edgeward's envelope. Its gateway dies and the light must run
    # "peak" again; before, it went to the first program loaded, netconvert's "0" (3 s yellows,
    # no red clearance), and the monitor counted that program's violations.
    def enveloped(logic: ET.Element) -> list[tuple[str, str]]:
        out = []
        for phase in logic.iter("phase"):
            state = phase.get("state", "")
            if "y" not in state:
                out.append((state, "20"))
                continue
            out += [(state, "4"), ("".join("r" if c == "y" else c for c in state), "2")]
        return out

    scenario, _ = _city_with_plan(tmp_path, enveloped)
    out = tmp_path / "run"
    kills = [f for j in ("A0", "A1", "B0", "B1") for f in ("--fault", f"gateway_kill:{j}@61-100")]
    sim_traffic(
        "--scenario", str(scenario), "--controller", "edgeward",
        "--counter", "truth", "--minutes", "2", "--no-progress", "--out", str(out), *kills,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faults"] == [k for k in kills if k != "--fault"]
    assert summary["mode_changes"] >= 8  # each light released and taken back
    assert summary["safety_violations"] == 0
