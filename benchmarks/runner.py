"""Adaptive measurement: warm up, then iterate until the percentiles settle or the budget ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.memory import PeakRss
from benchmarks.stats import is_stable, summarize_ms, thin, tracked


@dataclass(frozen=True)
class Budget:
    """How long one measurement may take and when its percentiles count as stable."""

    warmup_iters: int = 5
    warmup_s: float = 2.0
    min_iters: int = 20
    max_iters: int = 5000
    time_s: float = 10.0
    rel_tol: float = 0.03

    @classmethod
    def quick(cls) -> Budget:
        return cls(warmup_iters=2, warmup_s=0.5, min_iters=8, max_iters=500, time_s=1.0)


def measure(
    fn: Callable[[], object],
    budget: Budget,
    items_per_call: int = 1,
    unit: str = "items/s",
) -> dict[str, Any]:
    """Time `fn` adaptively; the result is one JSON-ready record (latency, warm-up, memory).

    Warm-up runs at least `warmup_iters` calls (more while under `warmup_s` and still
    settling) and is reported apart. Then calls are timed in growing chunks; after each chunk
    the tracked percentiles are compared with the previous checkpoint, and the run stops when
    they moved less than `rel_tol`, or at `time_s` / `max_iters`.
    """
    warm: list[float] = []
    start = time.perf_counter()
    while len(warm) < budget.warmup_iters or (
        time.perf_counter() - start < budget.warmup_s
        and len(warm) < 4 * budget.warmup_iters
        and warm[-1] > 1.1 * min(warm)
    ):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)

    samples: list[float] = []
    previous: tuple[float, ...] | None = None
    reason = "max_iterations"
    next_check = budget.min_iters
    with PeakRss() as mem:
        began = time.perf_counter()
        while len(samples) < budget.max_iters:
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            samples.append(t1 - t0)
            if t1 - began >= budget.time_s and len(samples) >= 3:
                reason = "time_budget"
                break
            if len(samples) >= next_check:
                current = tracked(samples)
                if (
                    previous is not None
                    and len(current) == len(previous)
                    and is_stable(previous, current, budget.rel_tol)
                ):
                    reason = "stable"
                    break
                previous = current
                next_check = int(next_check * 1.5) + 1
        elapsed = sum(samples)
    latency = summarize_ms(samples)
    return {
        "latency_ms": latency,
        "throughput": {
            "value": items_per_call * len(samples) / elapsed if elapsed > 0 else 0.0,
            "unit": unit,
        },
        "warmup": {
            "iterations": len(warm),
            "first_ms": warm[0] * 1e3,
            "mean_ms": sum(warm) / len(warm) * 1e3,
            "last_ms": warm[-1] * 1e3,
        },
        "iterations": len(samples),
        "stop_reason": reason,
        "stable": reason == "stable",
        "memory": mem.as_dict(),
        "samples_ms": thin([s * 1e3 for s in samples]),
    }
