"""(frame, truth) pairs for training and checking the vehicle counter, rendered from SUMO runs."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.traffic.camera import CONDITIONS, CameraRenderer, apply_fault
from sim.traffic.faults import CAMERA_MODES
from sim.traffic.network import junctions_of, read_net
from sim.traffic.scenario import build_scenario, parse_scenario
from sim.traffic.vehicles import VehicleFeed

IRREGULAR = str(Path(__file__).parent / "networks" / "irregular.sumocfg")
DEFAULT_SCENARIOS = ("grid:2x2:rush", "arterial:1x3:asymmetric", IRREGULAR)


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # HxWx3 uint8 BGR
    queue: int  # halting vehicles in view (speed < 0.1 m/s)
    approaching: int  # moving vehicles in view
    condition: str
    fault: str | None  # camera fault drawn into the image, None for a healthy frame
    scenario: str
    junction_id: str
    approach_id: str
    time: float
    seed: int


def render_dataset(
    scenarios: Sequence[str] = DEFAULT_SCENARIOS,
    *,
    minutes: float = 10.0,
    seeds: Sequence[int] = (1,),
    every_s: float = 10.0,
    warmup_s: float = 30.0,
    size: int = 96,
    conditions: Sequence[str] = CONDITIONS,
    fault_rate: float = 0.0,
    workdir: Path | None = None,
) -> Iterator[Sample]:
    """Run each scenario and seed under its fixed programs; every `every_s` simulated seconds
    yield one sample per approach camera, with a random condition (and, at `fault_rate`, a
    random camera fault drawn over the healthy frame; counts stay the truth)."""
    for c in conditions:
        if c not in CONDITIONS:
            raise ValueError(f"camera condition {c!r} is unknown; use some of {CONDITIONS}")
    with tempfile.TemporaryDirectory(prefix="edgeward-dataset-") as tmp:
        base = workdir or Path(tmp)
        for k, scenario_text in enumerate(scenarios):
            for seed in seeds:
                yield from _one_run(
                    scenario_text,
                    seed=seed,
                    minutes=minutes,
                    every_s=every_s,
                    warmup_s=warmup_s,
                    size=size,
                    conditions=conditions,
                    fault_rate=fault_rate,
                    workdir=base / f"run-{k}-seed{seed}",
                )


def _one_run(
    scenario_text: str,
    *,
    seed: int,
    minutes: float,
    every_s: float,
    warmup_s: float,
    size: int,
    conditions: Sequence[str],
    fault_rate: float,
    workdir: Path,
) -> Iterator[Sample]:
    from sim.traffic.harness import start_sumo

    spec = parse_scenario(scenario_text)
    scenario = build_scenario(spec, workdir, seed=seed, minutes=minutes)
    junctions = junctions_of(read_net(scenario.net_file))
    rng = np.random.default_rng(seed)
    renderer = CameraRenderer(junctions, size=size, seed=seed)
    end = scenario.begin_s + minutes * 60.0
    conn = start_sumo(scenario, scenario.net_file, out_dir=workdir, end=end, seed=seed)
    try:
        feed = VehicleFeed(conn)
        next_at = scenario.begin_s + warmup_s
        t = scenario.begin_s
        while t < end - 1e-9:
            conn.simulationStep()
            feed.on_step()
            t = float(conn.simulation.getTime())
            if t < next_at:
                continue
            next_at += every_s
            renderer.observe(feed.states())
            for j in junctions:
                for a in j.approaches:
                    cond = conditions[int(rng.integers(len(conditions)))]
                    frame = renderer.render(j.junction_id, a.approach_id, t, cond)
                    assert frame.image is not None
                    image, fault = frame.image, None
                    if fault_rate > 0 and rng.random() < fault_rate:
                        fault = str(rng.choice([m for m in CAMERA_MODES if m in _DRAWN]))
                        image = apply_fault(image, fault, rng)
                    yield Sample(
                        image=image,
                        queue=frame.truth.queue,
                        approaching=frame.truth.approaching,
                        condition=cond,
                        fault=fault,
                        scenario=spec.name,
                        junction_id=j.junction_id,
                        approach_id=a.approach_id,
                        time=t,
                        seed=seed,
                    )
    finally:
        conn.close()


_DRAWN = ("black", "blur", "obstructed")  # faults that change a single frame's pixels
