"""Prometheus metrics of the cloud tier in base units (seconds), exported by Ray's metrics agent."""

from __future__ import annotations

from functools import cache
from typing import Any

# Grading takes milliseconds to seconds on CPU; queueing can reach the request timeout.
SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
STAGES = ("queue", "preprocess", "infer", "explain")


@cache
def stage_histograms() -> dict[str, Any]:
    """One `edgeward_grader_<stage>_seconds` histogram per stage, tagged by model version."""
    from ray.serve.metrics import Histogram

    return {
        stage: Histogram(
            f"edgeward_grader_{stage}_seconds",
            description=f"time per scan spent in the grader's {stage} stage",
            boundaries=SECONDS_BUCKETS,
            tag_keys=("model_version",),
        )
        for stage in STAGES
    }


@cache
def batch_size_histogram() -> Any:
    from ray.serve.metrics import Histogram

    return Histogram(
        "edgeward_grader_batch_size",
        description="scans per @serve.batch call",
        boundaries=[1, 2, 4, 8, 16, 32, 64],
        tag_keys=("model_version",),
    )


@cache
def request_counter() -> Any:
    from ray.serve.metrics import Counter

    return Counter(
        "edgeward_cloud_grade_requests_total",
        description="grade requests by transport and outcome",
        tag_keys=("transport", "outcome"),  # type: ignore[arg-type]
    )


@cache
def request_seconds() -> Any:
    from ray.serve.metrics import Histogram

    return Histogram(
        "edgeward_cloud_request_seconds",
        description="end-to-end time of a grade request inside the ingress",
        boundaries=SECONDS_BUCKETS,
        tag_keys=("transport",),
    )


def observe_stages(timings: dict[str, float], model_version: str) -> None:
    hist = stage_histograms()
    for stage, seconds in timings.items():
        if stage in hist:
            hist[stage].observe(seconds, tags={"model_version": model_version})
