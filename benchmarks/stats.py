"""Latency statistics and the stopping rule of the adaptive runner."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = (50, 95, 99)


def summarize_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99, mean, min, max and std of latencies given in seconds, reported in ms."""
    if len(samples_s) == 0:
        raise ValueError("no latency samples to summarize; measure at least one iteration")
    arr = np.asarray(samples_s, dtype=np.float64) * 1e3
    p50, p95, p99 = (float(v) for v in np.percentile(arr, PERCENTILES))
    return {
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "mean": float(arr.mean()),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "std": float(arr.std()),
        "n": len(arr),
    }


def percentiles(samples: Sequence[float]) -> tuple[float, float, float]:
    p50, p95, p99 = (float(v) for v in np.percentile(np.asarray(samples), PERCENTILES))
    return p50, p95, p99


def is_stable(previous: tuple[float, ...], current: tuple[float, ...], rel_tol: float) -> bool:
    """True when every tracked percentile moved less than `rel_tol` since the last checkpoint."""
    return all(
        abs(c - p) <= rel_tol * max(abs(p), 1e-12) for p, c in zip(previous, current, strict=True)
    )


def tracked(samples: Sequence[float]) -> tuple[float, ...]:
    """The percentiles the stopping rule watches: p99 only once there are enough samples for it.

    p99 from fewer than 100 samples is just the maximum; waiting for it to settle would spend
    the whole budget on noise.
    """
    p50, p95, p99 = percentiles(samples)
    return (p50, p95, p99) if len(samples) >= 200 else (p50, p95)


def thin(samples_ms: Sequence[float], keep: int = 2000) -> list[float]:
    """At most `keep` samples, evenly spread, rounded: enough to redraw the distribution."""
    arr = np.asarray(samples_ms, dtype=np.float64)
    if len(arr) > keep:
        arr = arr[np.linspace(0, len(arr) - 1, keep).astype(int)]
    return [round(float(v), 4) for v in arr]
