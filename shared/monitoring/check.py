"""Drift checks over a prediction log: data drift per feature and on confidence, concept drift
from reviewer labels. numpy only, so a gateway can judge its own log.

References come from the model's manifest (`extra["reference"]`: histograms of the validation
split). A feature the manifest has no reference for (the embedding sketch, quality measures) is
judged against the first `baseline` logged predictions of the model instead, and the check says
so in its notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.monitoring.drift import DriftResult, DriftThresholds, detect
from shared.monitoring.prediction_log import LoggedPrediction, feature_matrix


def reference_sample(description: Mapping[str, Any]) -> np.ndarray:
    """A sample with the reference's distribution, `n` points long.

    From the quantiles when they exist (the inverse CDF, piecewise linear between them: it
    follows the dense part of a skewed feature, where equal-width histogram bins are too coarse),
    else from the histogram with each bin's count spread evenly inside it.
    """
    n = int(description.get("n") or 0)
    quantiles = description.get("quantiles") or {}
    if n >= 2 and len(quantiles) >= 3:
        levels = np.array([float(k) for k in quantiles])
        values = np.array([float(v) for v in quantiles.values()])
        order = np.argsort(levels)
        return np.interp((np.arange(n) + 0.5) / n, levels[order], values[order])
    hist = description["histogram"]
    edges, counts = np.asarray(hist["edges"], float), np.asarray(hist["counts"], int)
    parts = [
        edges[i] + (np.arange(c) + 0.5) / c * (edges[i + 1] - edges[i])
        for i, c in enumerate(counts)
        if c > 0
    ]
    return np.concatenate(parts) if parts else np.array([float(description["mean"])])


@dataclass(frozen=True)
class Reference:
    """Per-feature reference samples and where each came from."""

    samples: dict[str, np.ndarray]
    sources: dict[str, str]  # feature -> "manifest" | "log baseline (first N)"

    def notes(self) -> list[str]:
        fallback = sorted(k for k, s in self.sources.items() if s != "manifest")
        if not fallback:
            return []
        return [
            f"no manifest reference for {', '.join(fallback)}: judged against "
            f"{self.sources[fallback[0]]} instead"
        ]


def build_reference(
    manifest_extra: Mapping[str, Any],
    rows: Sequence[LoggedPrediction],
    baseline: int = 200,
) -> Reference:
    """Manifest histograms where they exist, else the first `baseline` logged rows."""
    ref = manifest_extra.get("reference") or {}
    samples: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for name, desc in (ref.get("image") or {}).items():
        samples[name] = reference_sample(desc)
        sources[name] = "manifest"
    if "confidence" in ref:
        samples["confidence"] = reference_sample(ref["confidence"])
        sources["confidence"] = "manifest"
    head = list(rows[:baseline])
    logged = sorted({k for r in head for k in r.features} | {"confidence"})
    for name in logged:
        if name not in samples and len(head) >= 2:
            samples[name] = feature_matrix(head, name)
            sources[name] = f"log baseline (first {len(head)} predictions)"
    return Reference(samples, sources)


@dataclass(frozen=True)
class ConceptDrift:
    """Accuracy on reviewer-labelled predictions: recent window against the reference."""

    n_labelled: int
    window: int
    reference_accuracy: float | None
    recent_accuracy: float | None
    drifted: bool
    detail: str


@dataclass(frozen=True)
class DriftCheck:
    model: str
    n: int
    results: list[DriftResult]
    concept: ConceptDrift
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[DriftResult]:
        return [r for r in self.results if r.drifted]

    @property
    def alarm(self) -> bool:
        return bool(self.drifted) or self.concept.drifted


def concept_drift(
    rows: Sequence[LoggedPrediction],
    window: int = 100,
    reference_accuracy: float | None = None,
    max_drop: float = 0.1,
    min_labels: int = 30,
) -> ConceptDrift:
    """Compare the last `window` labelled predictions' accuracy with the reference accuracy
    (the first labelled window when no reference is given)."""
    labelled = [r for r in rows if r.label is not None and r.prediction is not None]
    n = len(labelled)
    if n < min_labels:
        return ConceptDrift(
            n, window, reference_accuracy, None, False,
            f"{n} reviewer-labelled predictions, need {min_labels} to judge concept drift",
        )  # fmt: skip
    correct = np.array([r.prediction == r.label for r in labelled], dtype=float)
    recent = float(correct[-window:].mean())
    ref = reference_accuracy
    if ref is None:
        if n < 2 * min_labels:
            return ConceptDrift(
                n, window, None, recent, False,
                f"accuracy {recent:.3f} on {n} labels; no reference accuracy yet",
            )  # fmt: skip
        ref = float(correct[: min(window, n // 2)].mean())
    drifted = ref - recent > max_drop
    detail = (
        f"reviewer-confirmed accuracy {recent:.3f} over the last {min(window, n)} labels vs "
        f"{ref:.3f} reference (alarm on a drop above {max_drop:.2f})"
    )
    return ConceptDrift(n, window, ref, recent, drifted, detail)


def check_drift(
    model: str,
    rows: Sequence[LoggedPrediction],
    reference: Reference,
    *,
    thresholds: DriftThresholds | None = None,
    window: int = 200,
    reference_accuracy: float | None = None,
) -> DriftCheck:
    """Judge the last `window` rows of every feature that has a reference."""
    current = list(rows[-window:])
    results = []
    for name in sorted(reference.samples):
        values = feature_matrix(current, name)
        results.append(detect(name, reference.samples[name], values, thresholds))
    concept = concept_drift(rows, window=window, reference_accuracy=reference_accuracy)
    return DriftCheck(model, len(current), results, concept, reference.notes())


def drift_timeline(
    rows: Sequence[LoggedPrediction],
    reference: Reference,
    feature: str,
    *,
    window: int = 100,
    step: int = 25,
    thresholds: DriftThresholds | None = None,
) -> list[tuple[int, DriftResult]]:
    """The drift statistic over sliding windows: (seq of the window's last row, result)."""
    out: list[tuple[int, DriftResult]] = []
    if feature not in reference.samples:
        return out
    for end in range(min(window, len(rows)), len(rows) + 1, step):
        chunk = rows[max(0, end - window) : end]
        values = feature_matrix(chunk, feature)
        out.append((chunk[-1].seq, detect(feature, reference.samples[feature], values, thresholds)))
    return out
