"""Plan computation time of the traffic coordinator for 1,000 junctions (budget: 50 ms).

    .venv/bin/python -m benchmarks.traffic_coordinator [--junctions 1000] [--repeat 50]

Prints JSON: the median and p90 of `draft` (the numpy pressure computation: the plan itself)
and of `plans` (draft plus building the 1,000 SignalPlan messages). The full sweep over
network sizes with reports is `edgeward bench traffic`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from benchmarks.suites.traffic import _aggregates, grid_topology
from cloud.traffic.coordinator import Coordinator

BUDGET_MS = 50.0


def _time(fn: object, now: float, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(now)  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1e3)
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--junctions", type=int, default=1000, help="network size (default 1000)")
    p.add_argument("--repeat", type=int, default=50, help="timed repetitions (default 50)")
    args = p.parse_args(argv)
    topology = grid_topology(args.junctions)
    coordinator = Coordinator(topology)
    now = time.time()
    for payload in _aggregates(topology, now, seed=1):
        coordinator.ingest(payload)
    assert len(coordinator.plans(now)) == len(topology.junctions)
    result = {"junctions": len(topology.junctions), "budget_ms": BUDGET_MS}
    for name, fn in (("draft", coordinator.draft), ("plans", coordinator.plans)):
        times = _time(fn, now, args.repeat)
        result[f"{name}_p50_ms"] = round(statistics.median(times), 2)
        result[f"{name}_p90_ms"] = round(times[int(0.9 * (len(times) - 1))], 2)
    result["within_budget"] = result["plans_p50_ms"] < BUDGET_MS
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
