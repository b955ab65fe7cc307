"""Per-subgroup sensitivity, specificity and calibration, and the largest gap between groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

MIN_GROUP = 20  # smaller groups are reported but not used for the gap: too noisy to judge


def binary_metrics(y_true: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    y_true, p = np.asarray(y_true, bool), np.asarray(p, float)
    pred = p >= threshold
    pos, neg = y_true.sum(), (~y_true).sum()
    return {
        "n": float(len(y_true)),
        "sensitivity": float((pred & y_true).sum() / pos) if pos else float("nan"),
        "specificity": float((~pred & ~y_true).sum() / neg) if neg else float("nan"),
        "ece": expected_calibration_error(y_true, p),
    }


def expected_calibration_error(y_true: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width probability bins, weighted by bin size."""
    y_true, p = np.asarray(y_true, float), np.asarray(p, float)
    if len(p) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.mean() * abs(y_true[mask].mean() - p[mask].mean())
    return float(total)


@dataclass(frozen=True)
class FairnessReport:
    by_group: dict[str, dict[str, dict[str, float]]]  # attribute -> group -> metric -> value
    gaps: dict[str, float]  # metric -> largest gap over all attributes
    worst: dict[str, str]  # metric -> "attribute: group A vs group B"

    def breaches(self, bounds: Mapping[str, float]) -> list[str]:
        """Human-readable list of metrics whose gap exceeds its bound."""
        return [
            f"{metric} gap {self.gaps[metric]:.3f} exceeds bound {bound:.3f} ({self.worst[metric]})"
            for metric, bound in bounds.items()
            if self.gaps.get(metric, 0.0) > bound
        ]


def audit(
    y_true: np.ndarray,
    p: np.ndarray,
    threshold: float,
    attributes: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = ("sensitivity", "specificity", "ece"),
) -> FairnessReport:
    """Metrics per subgroup of each attribute (camera, pigmentation, laterality, site, ...)."""
    by_group: dict[str, dict[str, dict[str, float]]] = {}
    gaps = dict.fromkeys(metrics, 0.0)
    worst = dict.fromkeys(metrics, "")
    for attr, values in attributes.items():
        values_arr = np.asarray(values)
        by_group[attr] = {}
        for group in sorted(set(values_arr.tolist())):
            mask = values_arr == group
            by_group[attr][str(group)] = binary_metrics(y_true[mask], p[mask], threshold)
        for metric in metrics:
            judged = {
                g: m[metric]
                for g, m in by_group[attr].items()
                if m["n"] >= MIN_GROUP and not np.isnan(m[metric])
            }
            if len(judged) < 2:
                continue
            hi, lo = max(judged, key=judged.__getitem__), min(judged, key=judged.__getitem__)
            gap = judged[hi] - judged[lo]
            if gap > gaps[metric]:
                gaps[metric] = gap
                worst[metric] = f"{attr}: {hi} {judged[hi]:.3f} vs {lo} {judged[lo]:.3f}"
    return FairnessReport(by_group, gaps, worst)
