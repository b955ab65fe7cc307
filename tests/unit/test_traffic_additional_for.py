"""Programs a .sumocfg loads from additional files follow the controller (Scenario.additional_for).

SUMO's own examples ship their timing plans this way (`fkk_in`, `cross`): before, actuated and
delay_based ran the file's static program instead of the rebuilt one (`cross`: 95 s, the same
for both) or SUMO refused the rebuilt junction (`fkk_in`: "Mismatching phase size").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from shared.config.traffic import SignalSafety
from sim.traffic.scenario import OWN, Scenario, ScenarioSpec

ADDITIONAL = """<additional>
    <poi id="p" x="0" y="0"/>
    <tlLogic id="J1" type="static" programID="manual" offset="0">
        <phase duration="30" state="GGrr"/>
        <phase duration="2" state="yyrr"/>
        <phase duration="30" state="rrGG"/>
        <phase duration="2" state="rryy"/>
    </tlLogic>
    <WAUT startProg="manual" refTime="0" id="w"><wautSwitch time="0" to="manual"/></WAUT>
    <wautJunction wautID="w" junctionID="J1"/>
</additional>
"""


def _scenario(tmp_path: Path) -> Scenario:
    (tmp_path / "programs.add.xml").write_text(ADDITIONAL)
    (tmp_path / "pois.add.xml").write_text('<additional><poi id="q" x="1" y="1"/></additional>')
    return Scenario(
        spec=ScenarioSpec("file", path=tmp_path / "x.sumocfg"),
        net_file=tmp_path / "x.net.xml",
        route_files=[],
        additional_files=[tmp_path / "programs.add.xml", tmp_path / "pois.add.xml"],
        workdir=tmp_path / "work",
    )


def test_edgeward_and_plain_fixed_load_the_files_as_given(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    assert scenario.additional_for("edgeward") == scenario.additional_files
    assert scenario.additional_for("fixed") == scenario.additional_files


def test_rebuilt_controllers_run_without_the_files_programs_and_keep_the_rest(
    tmp_path: Path,
) -> None:
    scenario = _scenario(tmp_path)
    for controller in ("actuated", "delay_based"):
        programs, pois = scenario.additional_for(controller)
        assert pois == scenario.additional_files[1]  # nothing to change: passed as it is
        root = ET.parse(programs).getroot()
        assert [e.tag for e in root] == ["poi"]


def test_under_the_envelope_the_files_programs_get_the_envelopes_yellows(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    programs, _ = scenario.additional_for("fixed", SignalSafety(yellow_s=4.0, all_red_s=2.0))
    logic = ET.parse(programs).getroot().find("tlLogic")
    assert logic is not None
    yellows = [float(p.get("duration", "0")) for p in logic if "y" in p.get("state", "")]
    assert yellows and min(yellows) >= 4.0
    assert ET.parse(scenario.additional_files[0]).getroot().find("tlLogic") is not None


def test_on_their_own_programs_the_baselines_keep_the_phases_made_actuated(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    programs, _ = scenario.additional_for("actuated", programs=OWN)
    root = ET.parse(programs).getroot()
    assert [e.tag for e in root] == ["poi", "tlLogic", "WAUT", "wautJunction"]
    logic = root.find("tlLogic")
    assert logic is not None and logic.get("type") == "actuated"
    greens = [p for p in logic if p.get("state") in ("GGrr", "rrGG")]
    assert [(p.get("minDur"), p.get("maxDur")) for p in greens] == [("7", "50")] * 2
    assert [p.get("state") for p in logic] == ["GGrr", "yyrr", "rrGG", "rryy"]  # same design


def test_a_networks_own_programs_made_actuated_keep_a_nema_logic_as_it_is(tmp_path: Path) -> None:
    net = tmp_path / "x.net.xml"
    net.write_text(
        '<net><tlLogic id="A" type="static" programID="0" offset="0">'
        '<phase duration="90" state="Gr"/><phase duration="4" state="yr"/></tlLogic>'
        '<tlLogic id="B" type="NEMA" programID="0" offset="0">'
        '<phase duration="20" state="G" minDur="5" maxDur="30" name="2"/></tlLogic></net>'
    )
    scenario = Scenario(ScenarioSpec("file", path=net), net, [], workdir=tmp_path / "w")
    logics = {
        e.get("id"): e
        for e in ET.parse(scenario.network_for("delay_based", programs=OWN)).iter("tlLogic")
    }
    assert logics["A"].get("type") == "delay_based"
    green = logics["A"][0]
    assert (green.get("minDur"), green.get("maxDur"), green.get("duration")) == ("7", "50", "50.0")
    assert logics["B"].get("type") == "NEMA" and logics["B"][0].get("minDur") == "5"
