"""The traffic gateway's frame-to-aggregate path: camera health, counting, aggregate message.

Frames are synthetic road scenes at the camera's resolution (a grey carriageway, lane marks,
coloured vehicles, sensor noise) that change every call, so the health check sees a live camera.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.results import BenchRun
from benchmarks.runner import Budget, measure
from shared.errors import EdgewardError

APPROACHES = ("north", "east", "south", "west")


def road_frames(n_sets: int, size: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`n_sets` sets of one BGR frame per approach."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(n_sets):
        frames = {}
        for _a in APPROACHES:
            img = np.full((size, size, 3), (70, 100, 75), np.uint8)
            left, right = size // 4, 3 * size // 4
            img[:, left:right] = 80
            for x in range(left + size // 8, right, size // 8):
                for y in range(0, size, 10):
                    cv2.line(img, (x, y), (x, y + 5), (200, 200, 200), 1)
            for _v in range(int(rng.integers(0, 9))):
                x0 = int(rng.integers(left, right - size // 10))
                y0 = int(rng.integers(0, size - size // 6))
                colour = tuple(int(c) for c in rng.integers(30, 255, 3))
                cv2.rectangle(img, (x0, y0), (x0 + size // 12, y0 + size // 7), colour, -1)
            noise = rng.normal(0, 5, img.shape)
            frames[_a] = np.clip(img + noise, 0, 255).astype(np.uint8)
        sets.append(frames)
    return sets


def run_traffic_gateway(run: BenchRun, registry: Path, budget: Budget, backend: str) -> None:
    """Per stage and end to end, for one junction with four approach cameras."""
    try:
        from edge.traffic.camera_health import CameraHealth
        from edge.traffic.counter import ModelCounter
    except ImportError as exc:
        run.skip("traffic gateway path", f"edge.traffic cannot be imported ({exc})")
        return
    try:
        counter = ModelCounter(registry, backend=backend)
    except EdgewardError as exc:
        run.skip("traffic gateway path", f"traffic-counter model: {exc}")
        return
    from shared.messages import ApproachCount, TrafficAggregate

    sets = road_frames(16, 96)
    health = {a: CameraHealth() for a in APPROACHES}
    state = {"i": 0}

    def next_frames() -> dict[str, np.ndarray]:
        state["i"] += 1
        return sets[state["i"] % len(sets)]

    def check(frames: dict[str, np.ndarray]) -> dict[str, Any]:
        return {a: health[a].check(f) for a, f in frames.items()}

    def aggregate(counts: dict[str, tuple[float, float]], verdicts: dict[str, Any]) -> bytes:
        return TrafficAggregate(
            sender="bench-junction",
            junction_id="bench-junction",
            interval_start=0.0,
            interval_s=5.0,
            approaches=[
                ApproachCount(
                    approach_id=a,
                    queue=counts.get(a, (0.0, 0.0))[0],
                    approaching=counts.get(a, (0.0, 0.0))[1],
                    camera_healthy=verdicts[a].healthy,
                    camera_reason=verdicts[a].reason,
                )
                for a in APPROACHES
            ],
            mode="coordinated",
        ).encode()

    fixed = sets[0]
    fixed_verdicts = check(fixed)
    fixed_counts = counter.count(fixed)

    def end_to_end() -> bytes:
        frames = next_frames()
        verdicts = check(frames)
        usable = {a: f for a, f in frames.items() if verdicts[a].healthy}
        return aggregate(counter.count(usable), verdicts)

    stages: dict[str, Callable[[], object]] = {
        "camera_health": lambda: check(next_frames()),
        "count": lambda: counter.count(next_frames()),
        "aggregate": lambda: aggregate(fixed_counts, fixed_verdicts),
        "end_to_end": end_to_end,
    }
    unhealthy = [a for a, v in check(sets[1]).items() if not v.healthy]
    run.sections["traffic_gateway"] = {
        "junction": "4 approaches, 96x96 BGR frames",
        "backend": counter.backend.name,
        "model": counter.backend.model.manifest.model_id,
        "unhealthy_cameras_in_synthetic_frames": unhealthy,
    }
    for stage, fn in stages.items():
        record = measure(fn, budget, items_per_call=1, unit="intervals/s")
        run.add(
            f"traffic-gateway/{stage}",
            record,
            params={"stage": stage, "approaches": len(APPROACHES), "backend": counter.backend.name},
        )
    e2e = next(r for r in run.results if r["name"] == "traffic-gateway/end_to_end")
    run.headline["traffic frame-to-aggregate p50 ms (4 cameras)"] = round(
        e2e["latency_ms"]["p50"], 3
    )
