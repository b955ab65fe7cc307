"""Prometheus metrics of one gateway, in its own registry (several gateways may share a process)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# From 1 ms to 5 s: an edge verdict should land well inside the first half.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stage_seconds = Histogram(
            "edgeward_clinic_stage_seconds",
            "Latency of one pipeline stage per scan",
            ["stage"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.verdicts = Counter(
            "edgeward_clinic_verdicts",
            "Edge verdicts by outcome",
            ["verdict"],
            registry=self.registry,
        )
        self.reasons = Counter(
            "edgeward_clinic_verdict_reasons",
            "Reason codes behind edge verdicts",
            ["verdict", "code"],
            registry=self.registry,
        )
        self.submissions = Counter(
            "edgeward_clinic_submissions",
            "Submissions by ingest path and receipt",
            ["source", "receipt"],
            registry=self.registry,
        )
        self.cloud_calls = Counter(
            "edgeward_clinic_cloud_calls",
            "Grading calls to the cloud by result",
            ["result"],
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "edgeward_clinic_outbox_depth",
            "Items waiting on disk for the cloud or the broker",
            ["outbox"],
            registry=self.registry,
        )

        self.dead_letters = Gauge(
            "edgeward_clinic_dead_letters",
            "Scans the cloud uplink gave up on, waiting for `edgeward edge clinic retry`",
            registry=self.registry,
        )

    def watch_dead_letters(self, count: Callable[[], int]) -> None:
        self.dead_letters.set_function(count)

    def watch_depth(self, outbox: str, depth: Callable[[], int]) -> None:
        self.outbox_depth.labels(outbox=outbox).set_function(depth)

    def observe_outcome(
        self, verdict: str, codes: list[str], timings_ms: Mapping[str, float]
    ) -> None:
        self.verdicts.labels(verdict=verdict).inc()
        for code in codes or ["none"]:
            self.reasons.labels(verdict=verdict, code=code).inc()
        # Stage names come from the pipeline (decode, validate, quality, ood, triage, total).
        for stage, ms in timings_ms.items():
            self.stage_seconds.labels(stage=stage).observe(max(float(ms), 0.0) / 1000.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
