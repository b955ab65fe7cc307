"""Drift results as Prometheus metrics (own registry, so a scrape or textfile shows only these)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile

from shared.monitoring.check import DriftCheck


class DriftMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.statistic = Gauge(
            "edgeward_drift_statistic",
            "KS D (small windows) or PSI (large windows) of a feature against its reference",
            ["model", "feature", "method"],
            registry=self.registry,
        )
        self.drifted = Gauge(
            "edgeward_drift_detected",
            "1 if the feature's drift test alarmed in the last window",
            ["model", "feature"],
            registry=self.registry,
        )
        self.accuracy = Gauge(
            "edgeward_reviewed_accuracy",
            "accuracy on reviewer-labelled predictions over the last window",
            ["model"],
            registry=self.registry,
        )
        self.concept = Gauge(
            "edgeward_concept_drift_detected",
            "1 if reviewer-confirmed accuracy dropped beyond the bound",
            ["model"],
            registry=self.registry,
        )
        self.window = Gauge(
            "edgeward_drift_window_size", "predictions judged", ["model"], registry=self.registry
        )

    def update(self, check: DriftCheck) -> None:
        for r in check.results:
            self.statistic.labels(check.model, r.feature, r.method).set(r.statistic)
            self.drifted.labels(check.model, r.feature).set(float(r.drifted))
        if check.concept.recent_accuracy is not None:
            self.accuracy.labels(check.model).set(check.concept.recent_accuracy)
        self.concept.labels(check.model).set(float(check.concept.drifted))
        self.window.labels(check.model).set(check.n)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def write(self, path: Path) -> None:
        """For node_exporter's textfile collector."""
        write_to_textfile(str(path), self.registry)
