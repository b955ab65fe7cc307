"""`bench traffic`: the coordinator's plan computation time against network size.

Networks are synthetic grids (rows × cols junctions, four approaches each, left/straight/right
movements, a two-phase program with yellows): the shape of a city's arterial grid, at any size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.memory import python_peak_mb
from benchmarks.results import BenchRun
from benchmarks.runner import Budget, measure

SIDES = ("n", "e", "s", "w")
_STEP = {"n": (-1, 0), "e": (0, 1), "s": (1, 0), "w": (0, -1)}
_OPPOSITE = {"n": "s", "e": "w", "s": "n", "w": "e"}
# Approach from side x: straight leaves by the opposite side, right and left turn by the others.
_TURNS = {"n": ("w", "s", "e"), "e": ("n", "w", "s"), "s": ("e", "n", "w"), "w": ("s", "e", "n")}


@dataclass(frozen=True)
class TrafficPlan:
    sizes: tuple[int, ...] = (10, 50, 100, 250, 500, 1000, 2000)
    budget: Budget = field(default_factory=lambda: Budget(time_s=5.0))

    @classmethod
    def quick(cls) -> TrafficPlan:
        return cls(sizes=(10, 100), budget=Budget.quick())


def grid_topology(n: int) -> Any:
    """A grid of about `n` junctions (rows × cols = n exactly when n factors near a square)."""
    from cloud.traffic.topology import (
        ApproachTopo,
        JunctionTopo,
        LinkTopo,
        NetworkTopology,
        PhaseTopo,
    )

    rows = max(1, int(math.sqrt(n)))
    while n % rows:
        rows -= 1
    cols = n // rows
    junctions = {}
    lengths: dict[str, float] = {}

    def edge(r: int, c: int, side: str, inbound: bool) -> str:
        dr, dc = _STEP[side]
        other = f"{r + dr}_{c + dc}"
        return f"e_{other}_to_{r}_{c}" if inbound else f"e_{r}_{c}_to_{other}"

    for r in range(rows):
        for c in range(cols):
            jid = f"j{r}_{c}"
            approaches = tuple(ApproachTopo(s, edge(r, c, s, inbound=True), lanes=2) for s in SIDES)
            links: list[LinkTopo] = []
            for s in SIDES:
                for out_side in _TURNS[s]:
                    links.append(LinkTopo(len(links), s, edge(r, c, out_side, inbound=False)))
            ns = "".join("G" if link.approach_id in "ns" else "r" for link in links)
            ew = "".join("G" if link.approach_id in "ew" else "r" for link in links)
            phases = (
                PhaseTopo(ns, 30.0, "green"),
                PhaseTopo(ns.replace("G", "y"), 4.0, "yellow"),
                PhaseTopo(ew, 30.0, "green"),
                PhaseTopo(ew.replace("G", "y"), 4.0, "yellow"),
            )
            junctions[jid] = JunctionTopo(jid, approaches, tuple(links), phases)
            for s in SIDES:
                lengths[edge(r, c, s, inbound=True)] = 200.0
    # A junction's outbound edge toward a neighbour is that neighbour's inbound edge, so the
    # coordinator sees every interior movement's downstream queue.
    return NetworkTopology(junctions, edge_lengths_m=lengths)


def _aggregates(topology: Any, now: float, seed: int) -> list[bytes]:
    from shared.messages import ApproachCount, TrafficAggregate

    rng = np.random.default_rng(seed)
    out = []
    for jid, j in topology.junctions.items():
        out.append(
            TrafficAggregate(
                sender=jid,
                junction_id=jid,
                interval_start=now - 5.0,
                interval_s=5.0,
                approaches=[
                    ApproachCount(
                        approach_id=a.approach_id,
                        queue=float(rng.integers(0, 20)),
                        approaching=float(rng.integers(0, 10)),
                    )
                    for a in j.approaches
                ],
                mode="coordinated",
            ).encode()
        )
    return out


def _call(method: Callable[[float], object], now: float) -> Callable[[], object]:
    return lambda: method(now)


def run_traffic(run: BenchRun, plan: TrafficPlan) -> None:
    try:
        from cloud.traffic.coordinator import Coordinator
    except ImportError as exc:
        run.skip("traffic coordinator", f"cloud.traffic.coordinator cannot be imported ({exc})")
        return
    now = time.time()
    for n in tqdm(plan.sizes, desc="coordinator sizes", unit="network"):
        topology = grid_topology(n)
        t0 = time.perf_counter()
        coordinator = Coordinator(topology)
        compile_s = time.perf_counter() - t0
        payloads = _aggregates(topology, now, seed=n)
        t0 = time.perf_counter()
        for p in payloads:
            coordinator.ingest(p)
        ingest_s = time.perf_counter() - t0
        plans = coordinator.plans(now)
        if len(plans) != len(topology.junctions):
            run.skip(
                f"coordinator at {n} junctions",
                f"planned {len(plans)} of {len(topology.junctions)} junctions; not timed",
            )
            continue
        stages: dict[str, Callable[[], object]] = {
            "draft": _call(coordinator.draft, now),
            "plans": _call(coordinator.plans, now),
        }
        for stage, fn in stages.items():
            record = measure(fn, plan.budget, items_per_call=n, unit="junctions/s")
            run.add(
                f"traffic/{stage}/{n}",
                record,
                params={"junctions": n, "stage": stage, "approaches_per_junction": 4},
                metrics={
                    "compile_ms": compile_s * 1e3,
                    "ingest_ms_per_aggregate": ingest_s * 1e3 / n,
                    "python_peak_mb": python_peak_mb(fn),
                },
                curve=("intersections", f"coordinator {stage}", n),
            )
    rows = {r["name"]: r for r in run.results}
    for n in (1000, 2000):
        if f"traffic/plans/{n}" in rows:
            run.headline[f"plans for {n} junctions p50 ms"] = round(
                rows[f"traffic/plans/{n}"]["latency_ms"]["p50"], 3
            )
            run.headline[f"draft (numpy) for {n} junctions p50 ms"] = round(
                rows[f"traffic/draft/{n}"]["latency_ms"]["p50"], 3
            )
