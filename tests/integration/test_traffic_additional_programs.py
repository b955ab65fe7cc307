"""A benchmark scenario often loads its signal programs from an additional file named in the
.sumocfg, after the network's own; SUMO runs the last loaded. `--describe` names and counts that
program's phases, not the network file's (before, it read the network file alone)."""

from __future__ import annotations

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
