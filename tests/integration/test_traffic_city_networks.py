"""City networks no one here wrote: SUMO's own OSM extracts, shipped in the eclipse-sumo wheel.

Braunschweig's DRT extract has tram rail signals (no signal program) and a walk signal no road
approach reaches; Ingolstadt's (tools/game/fkk_in) has a change interval staggered over three
yellow phases and a program that gives two crossing links protected green at once. Through the
real CLI: `--describe` lists them all, and in a short edgeward run every violation the
independent monitor finds is at a light edgeward refused to drive, with the reason. Their
.sumocfg scenarios load timing plans from additional files: the rebuilt baselines run without
them, and `--describe` names the links a light's running program never serves (bs3d).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sim_cli import edgeward_run, sim_traffic

pytestmark = pytest.mark.sumo


def _sumo_example(relative: str) -> Path:
    import sumo

    path = Path(sumo.SUMO_HOME) / "tools" / relative
    assert path.is_file(), f"{path}: the eclipse-sumo wheel no longer ships this network"
    return path


def test_rail_signals_are_described_and_a_walk_signal_is_driven_safely(tmp_path: Path) -> None:
    net = _sumo_example("game/DRT/osm.net.xml")
    described = sim_traffic("--scenario", str(net), "--describe")
    assert "1906399893: no program in the network (a rail signal)" in described, described
    assert "GS_2391105461: 0 approaches" in described
    assert "no road approach: its own program, made safe" in described

    summary = edgeward_run(net, tmp_path / "run", "3")
    # the walk signal's own program has 3 s yellows and no red clearance: the applier's does not
    assert summary["safety_violations"] == 0, summary["safety_by_kind"]
    assert "GS_2391105461" not in summary["not_driven"]
    assert summary["not_driven"]
    assert all("rail signal" in why for why in summary["not_driven"].values())


def test_a_staggered_yellow_stays_within_limits_and_an_unsafe_program_is_named(
    tmp_path: Path,
) -> None:
    net = _sumo_example("game/fkk_in/ingolstadt.net.xml.gz")
    summary = edgeward_run(net, tmp_path / "run", "3")
    refused = summary["not_driven"]
    assert list(refused) == ["gneJ21"]
    assert "phase 0" in refused["gneJ21"] and "protected green" in refused["gneJ21"]
    # junction 335525545 staggers its yellows over three phases: stretched phase by phase its
    # links showed 8 s of yellow; now every violation is gneJ21's own program
    assert summary["safety_violations"] == summary["safety_violations_own_programs"]
    violations = json.loads((tmp_path / "run" / "safety.json").read_text())
    assert {v["junction_id"] for v in violations} <= {"gneJ21"}


def test_a_scenarios_own_programs_make_way_for_the_rebuilt_baselines(tmp_path: Path) -> None:
    # Ingolstadt's scenario loads its timing plans from an additional file; actuated runs on
    # programs netconvert rebuilt, and SUMO refused to start ("Mismatching phase size") when
    # the file's plans came after them
    scenario = _sumo_example("game/fkk_in.sumocfg")
    for controller in ("actuated", "delay_based"):
        out = tmp_path / controller
        sim_traffic(
            "--scenario", str(scenario), "--controller", controller, "--envelope",
            "--minutes", "1", "--no-progress", "--out", str(out),
        )  # fmt: skip
        summary = json.loads((out / "summary.json").read_text())
        assert summary["vehicles"] > 0
        assert summary["safety_violations"] == 0  # the rebuilt programs, under the envelope


def test_describe_names_the_links_a_lights_running_program_never_serves() -> None:
    # Braunschweig's bs3d light has four one-green programs; SUMO runs the last, which serves
    # two approaches' turns and nothing else
    out = sim_traffic("--scenario", str(_sumo_example("game/bs3d.sumocfg")), "--describe")
    assert "program '3' of ['0', '1', '2', '3']" in out
    assert "program '3' never gives green to links [0, 1, 2, 5, 6, 7, 8, 9" in out


def test_actuated_on_a_scenarios_own_plan_keeps_its_protected_turn_stages(tmp_path: Path) -> None:
    # SUMO's `cross` gives each turn its own protected stage; netconvert's rebuild lets turns
    # go permissively in the through green instead, a different design from the one edgeward
    # drives. `--baseline-programs own` runs actuated on the scenario's own stages.
    out = tmp_path / "own"
    sim_traffic(
        "--scenario", str(_sumo_example("game/cross.sumocfg")), "--controller", "actuated",
        "--envelope", "--baseline-programs", "own", "--minutes", "1", "--no-progress",
        "--out", str(out),
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline_programs"] == "own" and summary["safety_violations"] == 0
    (plan,) = (out / "scenario").glob("cross.tls.add.actuated.own.envelope.xml")
    text = plan.read_text()
    assert 'type="actuated"' in text and 'programID="manual"' in text
    assert 'state="rrrrrGrrrrrG" minDur="7" maxDur="50"' in text  # a turn's own stage, kept


def test_a_scenario_that_starts_at_15_00_with_validation_off_runs(tmp_path: Path) -> None:
    # DLR's Braunschweig junction (tools/game/fokr_bs_demo): <begin value="15:0:0"/> stopped
    # the run with a ValueError traceback, and its old trip files need <xml-validation never>
    summary = edgeward_run(_sumo_example("game/fokr_bs_demo.sumocfg"), tmp_path / "run", "1")
    assert summary["vehicles"] > 0
    # its real plan sends two 'G' links into one lane (SUMO itself warns "Unsafe green phase")
    assert "protected green to links" in summary["not_driven"]["38"]
    assert summary["safety_violations"] == summary["safety_violations_own_programs"]
