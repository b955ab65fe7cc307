"""Run one scenario under one controller and write summary.json, the chart and the logs."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.config.traffic import SignalSafety
from sim.traffic.chart import delay_chart
from sim.traffic.controllers import Controller, SimContext, make_controller
from sim.traffic.faults import FaultSchedule
from sim.traffic.metrics import Trip, delay_series, read_tripinfo, summarise
from sim.traffic.network import junctions_of, read_net
from sim.traffic.safety import check_sequence, count_by_kind
from sim.traffic.scenario import Scenario, build_scenario, parse_scenario
from sim.traffic.sumo_bin import SumoToolError, output_safe, sumo_binary
from sim.traffic.traci_port import SignalRecorder

CHART_BIN_S = 60.0


@dataclass
class RunConfig:
    scenario: str
    controller: str
    minutes: float
    out_dir: Path
    seed: int = 1
    faults: list[str] = field(default_factory=list)
    routes: list[Path] = field(default_factory=list)
    profile: str | None = None
    safety: SignalSafety = field(default_factory=SignalSafety)
    progress: bool = True
    step_s: float = 1.0
    controller_options: dict[str, Any] = field(default_factory=dict)
    camera_condition: str = "day"
    # Pace the simulation 1:1 with the wall clock and give the ports wall time, so gateways can
    # work against a real cloud coordinator (the demo); otherwise run as fast as SUMO goes.
    realtime: bool = False
    # Baselines (fixed, actuated, delay_based) run their programs rewritten to `safety`'s change
    # intervals and green limits (sim.traffic.envelope): the fair comparison with edgeward.
    baseline_envelope: bool = False
    # actuated/delay_based on programs netconvert rebuilt ("rebuilt") or on the network's own
    # phases made actuated ("own"): the same phase design as edgeward drives
    baseline_programs: str = "rebuilt"


def run(cfg: RunConfig, controller: Controller | None = None) -> dict[str, Any]:
    """Simulate, then write DIR/summary.json, DIR/delay.png, DIR/safety.json; return the summary.

    `controller` overrides `cfg.controller` (tests and plugins pass an instance).
    """
    if cfg.minutes <= 0:
        raise ValueError(f"minutes must be positive, got {cfg.minutes}")
    out = cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    spec = parse_scenario(cfg.scenario, cfg.routes, cfg.profile)
    schedule = FaultSchedule.parse(cfg.faults)
    ctrl = controller or make_controller(cfg.controller, **cfg.controller_options)
    scenario = build_scenario(spec, out / "scenario", seed=cfg.seed, minutes=cfg.minutes)
    kind = cfg.controller
    envelope = cfg.safety if cfg.baseline_envelope else None
    net_file = scenario.network_for(kind, envelope, cfg.baseline_programs)
    junctions = junctions_of(read_net(net_file))
    schedule.validate(
        {
            j.junction_id: [k for a in j.approaches for k in (a.approach_id, a.edge_id)]
            for j in junctions
        }
    )
    horizon = cfg.minutes * 60.0
    end = scenario.begin_s + horizon
    tripinfo = out / "tripinfo.xml"
    sumo_out = out if output_safe(out) else Path(tempfile.mkdtemp(prefix="edgeward-sumo-"))
    additional = scenario.additional_for(kind, envelope, cfg.baseline_programs)
    try:
        conn = _start_sumo(
            scenario, net_file, sumo_out / "tripinfo.xml", cfg, end, additional=additional
        )
    except BaseException:
        if sumo_out != out:  # SUMO opened its outputs there before it gave up
            shutil.rmtree(sumo_out, ignore_errors=True)
        raise
    wall0 = time.perf_counter()
    pending_delay: list[Trip] = []
    teleports = 0
    try:
        recorder = SignalRecorder(conn, [j.junction_id for j in junctions])
        ctx = SimContext(
            conn=conn,
            junctions=[j for j in junctions if j.approaches],
            unwatched=[j for j in junctions if not j.approaches],
            faults=schedule,
            out_dir=out,
            safety=cfg.safety,
            seed=cfg.seed,
            step_s=cfg.step_s,
            end_s=end,
            camera_condition=cfg.camera_condition,
            clock_offset=time.time() - scenario.begin_s if cfg.realtime else 0.0,
        )
        ctrl.start(ctx)
        wall_start_epoch = time.time()
        try:
            teleports = _loop(
                conn,
                ctx=ctx,
                ctrl=ctrl,
                recorder=recorder,
                begin=scenario.begin_s,
                end=end,
                progress=cfg.progress,
                pace_from=wall_start_epoch if cfg.realtime else None,
            )
        finally:
            ctrl.stop()
        pending_delay = _never_inserted(conn, end)
    finally:
        conn.close()
        if sumo_out != out and (sumo_out / "tripinfo.xml").exists():
            shutil.move(str(sumo_out / "tripinfo.xml"), tripinfo)
            shutil.rmtree(sumo_out, ignore_errors=True)
    wall = time.perf_counter() - wall0

    trips = [*read_tripinfo(tripinfo), *pending_delay]
    violations = []
    for j in junctions:
        violations += check_sequence(
            recorder.changes[j.junction_id], cfg.safety, j.layout, end_time=end
        )
    # a light the controller left on the network's own program is the network's, not ours
    own = [v for v in violations if v.junction_id in ctx.not_driven]
    summary: dict[str, Any] = {
        "scenario": spec.name,
        "controller": kind,
        "seed": cfg.seed,
        "minutes": cfg.minutes,
        **summarise(trips, horizon),
        "safety_violations": len(violations),
        "safety_by_kind": count_by_kind(violations),
        "safety_violations_own_programs": len(own),
        "not_driven": dict(ctx.not_driven),
        "phases_left_out": dict(ctx.left_out),
        "mode_changes": len(ctx.mode_changes),
        "teleports": teleports,
        "junctions": len(junctions),
        "controlled_junctions": len(ctx.junctions),
        "faults": [f.spec for f in schedule.faults],
        "sim_seconds": horizon,
        "wall_seconds": round(wall, 2),
        "sim_speed": round(horizon / wall, 1) if wall > 0 else None,
        "realtime": cfg.realtime,
        "wall_start_epoch": wall_start_epoch,
        "network": str(net_file),
        "safety": cfg.safety.model_dump(),
        "baseline_envelope": cfg.baseline_envelope,
        "baseline_programs": cfg.baseline_programs,
    }
    series = delay_series(trips, horizon, CHART_BIN_S)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "safety.json").write_text(
        json.dumps([asdict(v) for v in violations[:1000]], indent=1) + "\n"
    )
    (out / "mode_changes.json").write_text(
        json.dumps([asdict(m) for m in ctx.mode_changes], indent=1) + "\n"
    )
    (out / "delay_series.json").write_text(
        json.dumps({"bin_s": CHART_BIN_S, "mean_delay_s": series})
    )
    delay_chart(
        out / "delay.png",
        series=series,
        bin_s=CHART_BIN_S,
        faults=[
            (s - scenario.begin_s, e - scenario.begin_s, label)
            for s, e, label in schedule.windows()
        ],
        title=f"{spec.name} · {kind} · seed {cfg.seed}: mean delay {summary['mean_delay_s']} s",
        horizon_s=horizon,
    )
    return summary


def _start_sumo(
    scenario: Scenario,
    net_file: Path,
    tripinfo: Path,
    cfg: RunConfig,
    end: float,
    *,
    additional: list[Path],
) -> Any:
    return start_sumo(
        scenario,
        net_file,
        out_dir=cfg.out_dir,
        end=end,
        seed=cfg.seed,
        step_s=cfg.step_s,
        tripinfo=tripinfo,
        additional=additional,
    )


def start_sumo(
    scenario: Scenario,
    net_file: Path,
    *,
    out_dir: Path,
    end: float,
    seed: int,
    step_s: float = 1.0,
    tripinfo: Path | None = None,
    additional: list[Path] | None = None,
) -> Any:
    """Start headless SUMO under TraCI on a free port; returns the connection."""
    import traci

    cmd = [
        sumo_binary("sumo"),
        "-n",
        str(net_file),
        "-r",
        ",".join(str(r) for r in scenario.route_files),
        "--begin",
        str(scenario.begin_s),
        "--end",
        str(end),
        "--step-length",
        str(step_s),
        "--seed",
        str(seed),
        "--time-to-teleport",
        "300",
        "--no-step-log",
        "--no-warnings",
        "--duration-log.disable",
    ]
    if tripinfo is not None:
        cmd += ["--tripinfo-output", str(tripinfo), "--tripinfo-output.write-unfinished"]
    files = scenario.additional_files if additional is None else additional
    if files:
        cmd += ["-a", ",".join(str(a) for a in files)]
    label = f"edgeward-{uuid.uuid4().hex[:8]}"
    log_dir = out_dir if output_safe(out_dir) else Path(tempfile.gettempdir())
    errors = log_dir / f"sumo-{label}.errors.log"  # SUMO's errors name the bad file and line
    cmd += scenario.sumo_options
    cmd += ["--error-log", str(errors)]
    try:
        traci.start(cmd, label=label, stdout=subprocess.DEVNULL)
    except Exception as exc:  # traci raises FatalTraCIError or OSError with SUMO's own reason
        text = _read_when_written(errors)
        raise SumoToolError(
            f"SUMO would not start on {net_file} ({exc}): {text or 'no error message'}; "
            "fix the scenario files it names"
        ) from exc
    finally:
        if log_dir != out_dir:  # a stray file in the shared temp dir; the start's errors are read
            errors.unlink(missing_ok=True)
    return traci.getConnection(label)


def _read_when_written(path: Path, timeout_s: float = 5.0) -> str:
    """SUMO may still be writing its error log when TraCI reports the closed connection."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text(errors="replace")
            if "Quitting" in text:
                break
        time.sleep(0.05)
    return text[-800:].strip()


def _loop(
    conn: Any,
    *,
    ctx: SimContext,
    ctrl: Controller,
    recorder: SignalRecorder,
    begin: float,
    end: float,
    progress: bool,
    pace_from: float | None = None,
) -> int:
    """Step SUMO to `end`; with `pace_from` (wall epoch of `begin`) never run ahead of the clock."""
    from tqdm import tqdm

    teleports = 0
    bar = tqdm(total=int(end - begin), unit="sim-s", disable=not progress, desc="simulating")
    t = begin
    try:
        while t < end - 1e-9:
            if pace_from is not None:
                ahead = pace_from + (t - begin) - time.time()
                if ahead > 0:
                    time.sleep(ahead)
            conn.simulationStep()
            now = float(conn.simulation.getTime())
            bar.update(int(now - begin) - bar.n)
            t = now
            teleports += conn.simulation.getStartingTeleportNumber()
            recorder.poll(t)
            ctx.after_step(now)
            ctrl.step(t)
    finally:
        bar.close()
    return teleports


def _never_inserted(conn: Any, end: float) -> list[Trip]:
    """Vehicles still waiting to enter at the end: their delay runs to the end of the run."""
    out = []
    for vid in conn.simulation.getPendingVehicles():
        wait = float(conn.vehicle.getDepartDelay(vid))
        out.append(Trip(vid, end - wait, -1.0, wait, 0.0, 0, inserted=False))
    return out
