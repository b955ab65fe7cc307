"""The traffic side of the demo: the SUMO twin paced in real time against the real cloud tier.

The `edgeward` run's gateways publish to the demo's broker and take plans from the cloud tier's
coordinator, so stopping the cloud really leaves them without plans. A `fixed` run of the same
scenario and seed runs beside it for comparison.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.broker import MosquittoBroker
from shared.errors import EdgewardError
from sim.demo.console import Console, waiting
from sim.demo.report import TrafficRun
from sim.demo.settings import DemoSettings
from sim.demo.supervisor import Process, Supervisor, edgeward_cmd


@dataclass
class TrafficPlan:
    scenario: str
    minutes: float
    seed: int
    out: Path
    cloud_data: Path
    registry: Path
    failures: list[str] = field(default_factory=list)
    started_at: float = 0.0  # time.monotonic() when the runs started


def prepare(settings: DemoSettings, out: Path, cloud_data: Path, say: Console) -> TrafficPlan:
    """Write the network's topology where the cloud coordinator reads it at start-up."""
    plan = TrafficPlan(
        scenario=f"grid:{settings.grid}:rush",
        minutes=settings.traffic_minutes,
        seed=settings.seed,
        out=out / "traffic",
        cloud_data=cloud_data,
        registry=settings.registry.resolve(),
    )
    cloud_data.mkdir(parents=True, exist_ok=True)
    cmd = edgeward_cmd(
        "sim",
        "traffic",
        "--scenario",
        plan.scenario,
        "--seed",
        str(plan.seed),
        "--out",
        str(plan.out / "topology"),
        "--write-topology",
        str(cloud_data / "traffic-topology.json"),
    )
    with say.during(waiting("traffic: still writing the topology", time.monotonic())):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EdgewardError(f"could not write the traffic topology: {done.stderr[-800:]}")
    say(f"traffic: {plan.scenario}, topology written for the cloud coordinator")
    return plan


def junction_ids(plan: TrafficPlan) -> list[str]:
    """Every junction of the network: each connects to the broker as itself."""
    topology = json.loads((plan.cloud_data / "traffic-topology.json").read_text())
    return [str(j["junction_id"]) for j in topology["junctions"]]


def start(
    plan: TrafficPlan, sup: Supervisor, broker: MosquittoBroker, pki_dir: Path, say: Console
) -> dict[str, Process]:
    common = [
        "--scenario",
        plan.scenario,
        "--minutes",
        str(plan.minutes),
        "--seed",
        str(plan.seed),
        "--no-progress",
    ]
    plan.started_at = time.monotonic()
    runs = {
        "edgeward": sup.start(
            "traffic-edgeward",
            edgeward_cmd(
                "sim",
                "traffic",
                *common,
                "--controller",
                "edgeward",
                "--realtime",
                "--broker",
                f"{broker.host}:{broker.port}",
                "--mqtt-certs",
                str(pki_dir),
                "--external-coordinator",
                "--registry",
                str(plan.registry),
                "--out",
                str(plan.out / "edgeward"),
            ),
        ),
        "fixed": sup.start(
            "traffic-fixed",
            edgeward_cmd(
                "sim", "traffic", *common, "--controller", "fixed", "--out", str(plan.out / "fixed")
            ),
        ),
    }
    say(f"traffic: {plan.minutes:g} simulated minutes, edgeward (real time) and fixed side by side")
    return runs


def wait_coordinated(runs: dict[str, Process], timeout_s: float, say: Console) -> bool:
    """Wait until a junction of the edgeward run took its first plan from the cloud.

    The outage is timed from here: started any earlier (a slow host, Ray and SUMO starting), it
    would fall before any junction was coordinated and show no fallback at all.
    """
    proc = runs["edgeward"]
    deadline = time.monotonic() + timeout_s
    since = time.monotonic()
    with say.during(
        waiting("traffic: waiting for the junctions' first plan from the cloud", since)
    ):
        while time.monotonic() < deadline and proc.alive:
            if "-> coordinated" in proc.tail(200_000):
                waited = time.monotonic() - since
                say(f"traffic: junctions coordinated by the cloud after {waited:.0f} s")
                return True
            time.sleep(1.0)
    say(f"traffic: no junction coordinated within {timeout_s:.0f} s; the outage starts anyway")
    return False


def progress(plan: TrafficPlan, runs: dict[str, Process]) -> str:
    """How far the traffic runs are: the edgeward run is paced 1:1, so wall time is sim time."""
    elapsed = time.monotonic() - plan.started_at
    states = ", ".join(f"{n} {'running' if p.alive else 'done'}" for n, p in runs.items())
    return (
        f"traffic: {elapsed / 60:.1f} of ~{plan.minutes:g} simulated minutes elapsed "
        f"(paced in real time; {states})"
    )


def _load_run(controller: str, directory: Path, windows: list[tuple[float, float]]) -> TrafficRun:
    summary: dict[str, Any] = json.loads((directory / "summary.json").read_text())
    series = json.loads((directory / "delay_series.json").read_text())
    bin_s = float(series["bin_s"])
    points = [
        (i * bin_s + bin_s / 2, float(v))
        for i, v in enumerate(series["mean_delay_s"])
        if v is not None
    ]
    return TrafficRun(controller, summary, points, windows)


def finish(
    plan: TrafficPlan,
    runs: dict[str, Process],
    outage: tuple[float, float] | None,
    t0_epoch: float,
    say: Console,
) -> list[TrafficRun]:
    """Wait for both runs; shade the cloud outage in simulated time (the run is paced 1:1).

    `outage` is in seconds since the demo started, which was `t0_epoch` on the wall clock.
    """
    results = []
    for name, proc in runs.items():
        with say.during(lambda: progress(plan, runs)):
            code = proc.wait(timeout=plan.minutes * 60 + 600)
        if code != 0:
            say(f"traffic {name} failed (exit {code}); log ends:\n{proc.tail()}")
            plan.failures.append(f"{name}: exit {code}: {proc.tail(300).strip()}")
            continue
        windows: list[tuple[float, float]] = []
        summary = json.loads((plan.out / name / "summary.json").read_text())
        if outage and summary.get("realtime"):
            offset = float(summary["wall_start_epoch"]) - t0_epoch
            windows = [(max(0.0, outage[0] - offset), max(0.0, outage[1] - offset))]
        results.append(_load_run(name, plan.out / name, windows))
        s = results[-1].summary
        say(
            f"traffic {name}: mean delay {s.get('mean_delay_s')} s, "
            f"safety violations {s.get('safety_violations')}, mode changes {s.get('mode_changes')}"
        )
    return results
