"""The SUMO twin end to end: baselines, the SignalPort, recorded safety, cameras, bad files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from shared.config.traffic import SignalSafety
from sim.traffic.compare import compare, format_table
from sim.traffic.controllers import SimContext
from sim.traffic.dataset import IRREGULAR, render_dataset
from sim.traffic.harness import RunConfig, run
from sim.traffic.network import junctions_of, read_net
from sim.traffic.scenario import build_scenario, parse_scenario
from sim.traffic.sumo_bin import run_tool

pytestmark = pytest.mark.sumo

REPO = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {
    "mean_delay_s",
    "mean_waiting_s",
    "throughput",
    "stops",
    "safety_violations",
    "mode_changes",
    "scenario",
    "controller",
    "seed",
    "minutes",
}


def _sane(summary: dict, out: Path, controller: str) -> None:
    assert set(summary) >= SUMMARY_KEYS
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["controller"] == controller
    assert summary["vehicles"] > 20
    assert 0 < summary["throughput"] <= summary["vehicles"]
    assert summary["mean_delay_s"] > 0 and summary["mean_waiting_s"] >= 0
    assert summary["mean_delay_s"] < 600  # 4 simulated minutes: nothing waits longer
    assert summary["safety_violations"] == 0, summary["safety_by_kind"]
    assert summary["mode_changes"] == 0
    assert (out / "delay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("controller", ["fixed", "actuated", "delay_based"])
@pytest.mark.parametrize("scenario", ["grid:2x2:rush", IRREGULAR])
def test_baselines_run_with_sane_summaries(tmp_path: Path, scenario: str, controller: str) -> None:
    cfg = RunConfig(scenario, controller, 4, tmp_path, seed=3, progress=False)
    _sane(run(cfg), tmp_path, controller)
    if controller != "fixed":
        net = Path(json.loads((tmp_path / "summary.json").read_text())["network"])
        assert f'type="{controller}"' in net.read_text()


def test_approaches_come_from_the_network_for_three_and_five_legs() -> None:
    net = read_net(REPO / "sim/traffic/networks/irregular.net.xml")
    junctions = {j.junction_id: j for j in junctions_of(net)}
    assert set(junctions) == {"J1", "J2", "J3", "J4", "J5"}
    assert [a.approach_id for a in junctions["J3"].approaches] == ["north", "east", "west"]
    five = junctions["J2"]
    assert [a.approach_id for a in five.approaches] == [
        "north",
        "north-east",
        "east",
        "south",
        "west",
    ]
    for j in junctions.values():
        links = [i for a in j.approaches for i in a.link_indices]
        assert len(links) == len(set(links))  # no link belongs to two approaches
        vehicle_links = set(range(j.layout.n_links)) - j.layout.crossings
        assert set(links) == vehicle_links
    assert len(junctions["J1"].layout.crossings) == 4  # J1 has sidewalks and crossings
    assert junctions["J2"].approach("E2_J2").approach_id == "east"  # by edge id too


class _Replay:
    """Runs every junction's static program through the SignalPort, like a fixed fallback."""

    name = "replay"

    def start(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.ports = [ctx.port(j.junction_id) for j in ctx.junctions]
        self.until: dict[str, float] = {}
        self.seen: dict[str, set[str]] = {p.junction_id: set() for p in self.ports}

    def step(self, t: float) -> None:
        for p in self.ports:
            if t >= self.until.get(p.junction_id, 0.0):
                first = p.junction_id not in self.until
                i = 0 if first else (p.current_phase() + 1) % len(p.phases())
                p.set_phase(i)
                self.until[p.junction_id] = t + p.phases()[i].duration_s
            self.seen[p.junction_id].add(
                self.ctx.conn.trafficlight.getRedYellowGreenState(p.junction_id)
            )

    def stop(self) -> None:
        pass


def test_signal_port_drives_lights_and_the_recorded_sequence_is_safe(tmp_path: Path) -> None:
    ctl = _Replay()
    summary = run(RunConfig(IRREGULAR, "fixed", 4, tmp_path, progress=False), controller=ctl)
    assert summary["safety_violations"] == 0
    j1 = ctl.ctx.port("J1")
    states = {p.state for p in j1.phases()}
    assert ctl.seen["J1"] == states  # every phase shown, nothing else
    assert [p.kind for p in j1.phases()][:4] == ["green", "green", "yellow", "red"]
    assert any(j1.has_pedestrian_crossing(i) for i in range(len(j1.phases())))
    assert not ctl.ctx.port("J3").has_pedestrian_crossing(0)
    assert summary["throughput"] > 50


class _HandBack(_Replay):
    """Hands J1 back to its own program for a while, as a killed gateway does."""

    def step(self, t: float) -> None:
        conn = self.ctx.conn
        if t == 100:  # J1's own program continues the current phase for what is left of it
            phase = self.ctx.port("J1").current_phase()
            conn.trafficlight.setProgram("J1", "0")
            conn.trafficlight.setPhase("J1", phase)
            conn.trafficlight.setPhaseDuration("J1", self.until["J1"] - t)
        super().step(t)
        self.programs.append((t, conn.trafficlight.getProgram("J1")))

    def start(self, ctx: SimContext) -> None:
        super().start(ctx)
        self.programs: list[tuple[float, str]] = []


def test_port_takes_a_light_back_after_it_ran_its_own_program(tmp_path: Path) -> None:
    ctl = _HandBack()
    summary = run(RunConfig(IRREGULAR, "fixed", 3, tmp_path, progress=False), controller=ctl)
    programs = [p for t, p in ctl.programs if t >= 100]
    assert programs[0] == "0" and programs[-1] == "edgeward"
    assert summary["safety_violations"] == 0


class _Reckless(_Replay):
    """Jumps between green phases with no yellow: the recorder must catch it."""

    def step(self, t: float) -> None:
        if t % 5 == 0:
            for p in self.ports:
                greens = [i for i, ph in enumerate(p.phases()) if ph.kind == "green"]
                p.set_phase(greens[int(t // 5) % len(greens)])

    def start(self, ctx: SimContext) -> None:
        super().start(ctx)
        with pytest.raises(ValueError, match="phase 99 does not exist"):
            self.ports[0].set_phase(99)


def test_unsafe_switching_is_recorded_as_violations(tmp_path: Path) -> None:
    summary = run(
        RunConfig(IRREGULAR, "fixed", 2, tmp_path, progress=False), controller=_Reckless()
    )
    kinds = summary["safety_by_kind"]
    assert kinds.get("green_to_red", 0) > 0 and kinds.get("short_green", 0) > 0
    detail = json.loads((tmp_path / "safety.json").read_text())
    assert detail[0]["junction_id"] in {"J1", "J2", "J3", "J4", "J5"}


class _Watcher(_Replay):
    """Records the faults it is told about and checks camera truth against TraCI."""

    def start(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.fault_times: list[float] = []
        self.checked = 0

    def step(self, t: float) -> None:
        if self.ctx.faults.active(t, "cloud_down"):
            self.fault_times.append(t)
        if t % 30 == 0 and t >= 60:
            self._check_camera(t)

    def _check_camera(self, t: float) -> None:
        conn = self.ctx.conn
        for j in self.ctx.junctions:
            for a in j.approaches:
                frame = self.ctx.camera.render(j.junction_id, a.approach_id, t)
                queue = moving = 0
                for lane in a.lanes:
                    for vid in conn.lane.getLastStepVehicleIDs(lane.lane_id):
                        dist = lane.offset_m + lane.length_m - conn.vehicle.getLanePosition(vid)
                        if dist <= 60.0:
                            if conn.vehicle.getSpeed(vid) < 0.1:
                                queue += 1
                            else:
                                moving += 1
                assert (frame.truth.queue, frame.truth.approaching) == (queue, moving)
                if frame.fault is None:
                    assert frame.image is not None
                self.checked += 1


def test_faults_reach_the_controller_and_camera_truth_matches_traci(tmp_path: Path) -> None:
    ctl = _Watcher()
    summary = run(
        RunConfig(
            "grid:2x2:steady",
            "fixed",
            3,
            tmp_path,
            progress=False,
            faults=["cloud_down@60-120", "camera:A0:north:black@0-180"],
        ),
        controller=ctl,
    )
    assert ctl.fault_times[0] == 60 and ctl.fault_times[-1] == 119
    assert ctl.checked >= 16 * 4
    assert summary["faults"] == ["camera:A0:north:black@0-180", "cloud_down@60-120"]


def test_rendered_dataset_frames_match_their_counts() -> None:
    samples = list(render_dataset(["grid:2x2:rush"], minutes=3, every_s=30, warmup_s=60))
    assert len(samples) == 5 * 16  # 5 instants x 4 junctions x 4 approaches
    assert sum(s.queue + s.approaching for s in samples) > 20
    empty = [s.image for s in samples if s.queue + s.approaching == 0 and s.condition == "day"]
    busy = [s.image for s in samples if s.queue + s.approaching >= 3 and s.condition == "day"]
    assert empty and busy
    # Vehicles are drawn: busy frames differ more from their own median (the road) than empty.
    spread = [float(np.abs(img.astype(int) - np.median(img, axis=(0, 1))).mean()) for img in busy]
    calm = [float(np.abs(img.astype(int) - np.median(img, axis=(0, 1))).mean()) for img in empty]
    assert np.mean(spread) > np.mean(calm)
    assert {s.image.shape for s in samples} == {(96, 96, 3)}
    assert cv2.imencode(".png", samples[0].image)[0]


def test_cli_runs_a_scenario_and_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    exe = str(REPO / ".venv/bin/edgeward")
    ok = subprocess.run(
        [
            *(exe, "sim", "traffic", "--scenario", "arterial:1x3:asymmetric", "--minutes", "2"),
            *("--out", str(tmp_path / "run"), "--no-progress", "--fault", "cloud_down@30-60"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["junctions"] == 3 and summary["scenario"] == "arterial:1x3:asymmetric"
    bad = subprocess.run(
        [
            *(exe, "sim", "traffic", "--scenario", "grid:4x4", "--out", str(tmp_path / "b")),
            *("--fault", "camera:A0:north:melted@1-2"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 2
    assert "camera mode 'melted' is unknown" in bad.stderr
    assert "Traceback" not in bad.stderr
    limits = tmp_path / "safety.yaml"
    limits.write_text("yellow_s: 4\nmin_gren_s: 5\n")
    typo = subprocess.run(
        [
            *(exe, "sim", "traffic", "--scenario", "grid:2x2", "--out", str(tmp_path / "c")),
            *("--safety", str(limits)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert typo.returncode == 2 and "min_gren_s" in typo.stderr
    described = subprocess.run(
        [exe, "sim", "traffic", "--scenario", IRREGULAR, "--describe"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert described.returncode == 0, described.stderr
    assert "J2: 5 approaches, 11 phases" in described.stdout
    assert "J3: 3 approaches" in described.stdout


def test_stricter_safety_limits_flag_the_programs_that_break_them(tmp_path: Path) -> None:
    strict = SignalSafety(yellow_s=5.0, min_green_s=30.0)
    summary = run(RunConfig("grid:2x2:steady", "fixed", 3, tmp_path, safety=strict, progress=False))
    kinds = summary["safety_by_kind"]
    assert kinds["short_yellow"] > 0  # the programs' 4 s yellows
    assert kinds["short_green"] > 0  # their 29 s greens
    assert summary["safety"]["yellow_s"] == 5.0


def test_user_network_runs_with_its_routes_or_generated_demand(tmp_path: Path) -> None:
    net = REPO / "sim/traffic/networks/irregular.net.xml"
    trips = REPO / "sim/traffic/networks/irregular.trips.xml"
    # A colon in the run directory: SUMO would read such an output path as host:port.
    own = run(
        RunConfig(str(net), "fixed", 2, tmp_path / "own:routes", routes=[trips], progress=False)
    )
    assert own["scenario"] == "irregular.net.xml" and own["vehicles"] > 20
    assert (tmp_path / "own:routes" / "tripinfo.xml").exists()
    gen = run(
        RunConfig(str(net), "actuated", 2, tmp_path / "gen", profile="asymmetric", progress=False)
    )
    assert gen["scenario"] == "irregular.net.xml:asymmetric" and gen["vehicles"] > 20
    assert gen["safety_violations"] == 0


def test_compare_reports_mean_and_spread_over_seeds(tmp_path: Path) -> None:
    table = compare("grid:2x2:steady", controllers=["fixed"], seeds=[1, 2], minutes=2, out=tmp_path)
    delay = table["fixed"]["mean_delay_s"]
    assert delay["min"] <= delay["mean"] <= delay["max"] and delay["sd"] >= 0
    assert delay["min"] != delay["max"]  # two seeds, two different demands
    assert json.loads((tmp_path / "compare.json").read_text()) == table
    assert format_table(table, ["fixed"]).splitlines()[1].startswith("fixed")


def test_two_legs_from_one_side_get_distinct_approach_ids(tmp_path: Path) -> None:
    nodes = {"C": (0, 0), "N": (0, 200), "NNE": (70, 200), "S": (0, -200), "W": (-200, 0)}
    (tmp_path / "y.nod.xml").write_text(
        "<nodes>"
        + "".join(
            f'<node id="{n}" x="{x}" y="{y}"' + (' type="traffic_light"/>' if n == "C" else "/>")
            for n, (x, y) in nodes.items()
        )
        + "</nodes>"
    )
    legs = [n for n in nodes if n != "C"]
    (tmp_path / "y.edg.xml").write_text(
        "<edges>"
        + "".join(
            f'<edge id="{a}_{b}" from="{a}" to="{b}"/>'
            for n in legs
            for a, b in ((n, "C"), ("C", n))
        )
        + "</edges>"
    )
    net = tmp_path / "y.net.xml"
    args = ["-n", str(tmp_path / "y.nod.xml"), "-e", str(tmp_path / "y.edg.xml")]
    run_tool("netconvert", args, "two northern legs", output=net)
    (junction,) = junctions_of(read_net(net))
    ids = [a.approach_id for a in junction.approaches]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert {"north", "south", "west", "north:NNE_C"} == set(ids)  # due north keeps "north"


def _shipped_osm_network() -> Path:
    """A real OSM city extract that the eclipse-sumo wheel ships (joined clusters, crossings)."""
    import sumo

    return Path(sumo.SUMO_HOME) / "tools" / "game" / "DRT" / "osm.net.xml"


def test_a_real_osm_network_runs_with_derived_approaches_and_cameras(tmp_path: Path) -> None:
    net = _shipped_osm_network()
    assert net.exists(), f"{net} is part of the eclipse-sumo wheel this project pins"

    class Cameras(_Watcher):
        def step(self, t: float) -> None:
            if t == 120:
                self._check_camera(t)

    ctl = Cameras()
    summary = run(
        RunConfig(str(net), "fixed", 2.5, tmp_path, profile="rush", progress=False),
        controller=ctl,
    )
    assert summary["junctions"] == 21 and summary["vehicles"] > 50
    assert 0 < summary["controlled_junctions"] < summary["junctions"]  # tram/walk-only signals
    assert ctl.checked == sum(len(j.approaches) for j in ctl.ctx.junctions) > 30
    assert summary["safety_violations"] > 0  # its 3 s yellows break the 4 s default limit
    assert set(summary["safety_by_kind"]) <= {
        "short_yellow",
        "yellow_to_green",  # joinedS_0 and joinedS_2 turn a yellow link green again
        "no_red_clearance",
        "short_green",
        "short_walk",
        "conflicting_greens",
    }


def test_a_gzipped_network_is_accepted(tmp_path: Path) -> None:
    gz = _shipped_osm_network().parents[1] / "fkk_in" / "ingolstadt.net.xml.gz"
    assert gz.exists(), f"{gz} is part of the eclipse-sumo wheel this project pins"
    scenario = build_scenario(parse_scenario(str(gz)), tmp_path, seed=1, minutes=2)
    assert scenario.route_files and scenario.route_files[0].stat().st_size > 0
    assert len(junctions_of(read_net(gz))) == 2
    actuated = scenario.network_for("actuated")
    assert actuated.name == "ingolstadt.actuated.net.xml"
    assert 'type="actuated"' in actuated.read_text()
