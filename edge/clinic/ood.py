"""Out-of-distribution guard: is this the kind of fundus photograph the models were trained on?

Several independent signals, any of which is enough to withhold an automatic answer:
the field-of-view geometry (from the quality gate), the quality net's doubt, and per net the
Mahalanobis distance of its `features` and the energy of its raw `logits` against the reference
statistics the model factory stored in `manifest.extra["ood"]` (same definitions as models/ood.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.backends import Prediction
from shared.registry import Manifest


@dataclass(frozen=True)
class OodSignal:
    code: str
    model: str
    score: float
    threshold: float


@dataclass
class OodReport:
    signals: list[OodSignal] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def out_of_distribution(self) -> bool:
        return bool(self.signals)


def energy(logits: np.ndarray) -> float:
    """-logsumexp of the raw logits (no temperature): high when no class fits."""
    m = float(np.max(logits))
    return -(m + float(np.log(np.exp(np.asarray(logits) - m).sum())))


def mahalanobis(features: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> float:
    d = np.asarray(features, dtype=np.float64) - mean
    return float(np.sqrt(max(float(d @ precision @ d), 0.0)))


class OodReference:
    """One net's reference statistics, parsed once at start-up."""

    def __init__(self, manifest: Manifest) -> None:
        ref = manifest.extra.get("ood")
        self.model_id = manifest.model_id
        self.present = isinstance(ref, dict) and "feature_mean" in ref
        if not self.present:
            return
        assert isinstance(ref, dict)
        self.mean = np.asarray(ref["feature_mean"], dtype=np.float64)
        self.precision = np.asarray(ref["feature_precision"], dtype=np.float64)
        self.maha_threshold = float(ref["mahalanobis_threshold"])
        self.energy_threshold = float(ref["energy_threshold"])

    def signals(
        self, prediction: Prediction, short: str
    ) -> tuple[list[OodSignal], dict[str, float]]:
        if not self.present:
            return [], {}
        scores = {f"{short}_energy": energy(prediction.logits)}
        found: list[OodSignal] = []
        if not np.isfinite(prediction.logits).all():
            found.append(OodSignal("ood_nonfinite", self.model_id, float("nan"), 0.0))
        if scores[f"{short}_energy"] > self.energy_threshold:
            found.append(
                OodSignal(
                    "ood_energy", self.model_id, scores[f"{short}_energy"], self.energy_threshold
                )
            )
        if prediction.features is not None and prediction.features.shape == self.mean.shape:
            d = mahalanobis(prediction.features, self.mean, self.precision)
            scores[f"{short}_mahalanobis"] = d
            if not d <= self.maha_threshold:  # NaN counts as out of distribution
                found.append(OodSignal("ood_mahalanobis", self.model_id, d, self.maha_threshold))
        return found, scores


def guard(predictions: dict[str, tuple[OodReference, Prediction]]) -> OodReport:
    """Combine every net's signals; `predictions` maps a short name (quality, triage) to both."""
    report = OodReport()
    for short, (reference, prediction) in predictions.items():
        signals, scores = reference.signals(prediction, short)
        report.signals.extend(signals)
        report.scores.update(scores)
    return report


OOD_REASON = (
    "this does not look like the fundus photographs the models were trained on "
    "(another modality, another camera or not an eye) — a person must review it"
)
