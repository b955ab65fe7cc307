"""Evaluation metrics on numpy arrays: AUC, sensitivity, specificity, calibration, subgroups."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank statistic (ties count half); NaN with one class only."""
    positive = positive.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def sensitivity(flagged: np.ndarray, positive: np.ndarray) -> float:
    positive = positive.astype(bool)
    return float(flagged[positive].mean()) if positive.any() else float("nan")


def specificity(flagged: np.ndarray, positive: np.ndarray) -> float:
    negative = ~positive.astype(bool)
    return float((~flagged[negative]).mean()) if negative.any() else float("nan")


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Top-label expected calibration error with equal-width confidence bins."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(conf[inside].mean() - correct[inside].mean())
    return float(total)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


MetricFn = Callable[[np.ndarray], dict[str, float]]


def subgroup_metrics(
    groups: Mapping[str, Sequence[str] | np.ndarray], metric_fn: MetricFn, min_size: int = 10
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, float]]:
    """Metrics per subgroup of each attribute, and the largest gap per metric.

    `metric_fn(index_array)` evaluates one subgroup. Subgroups smaller than `min_size` are
    reported but left out of the gaps, where noise would dominate.
    """
    per: dict[str, dict[str, dict[str, float]]] = {}
    gaps: dict[str, float] = {}
    for attr, values in groups.items():
        arr = np.asarray(values)
        per[attr] = {}
        for value in sorted(set(arr.tolist())):
            idx = np.nonzero(arr == value)[0]
            per[attr][str(value)] = {"n": float(len(idx)), **metric_fn(idx)}
        usable = [m for m in per[attr].values() if m["n"] >= min_size]
        for key in {k for m in usable for k in m if k != "n"}:
            vals = [m[key] for m in usable if key in m and np.isfinite(m[key])]
            if len(vals) >= 2:
                gap = float(max(vals) - min(vals))
                gaps[f"{key}.{attr}"] = gap
                gaps[key] = max(gaps.get(key, 0.0), gap)
    return per, gaps


def ece_noise_floor(probs: np.ndarray, draws: int = 200, seed: int = 0) -> float:
    """Mean ECE of a perfectly calibrated model with these confidences on this many images.

    Finite samples alone give a binned ECE above 0 (about 0.03 at 800 images); read an ECE
    against this floor.
    """
    conf = probs.max(axis=1)
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, 1.0, 16)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, 14)
    conf_sum = np.bincount(which, weights=conf, minlength=15)
    total = 0.0
    for _ in range(draws):
        correct = rng.random(len(conf)) < conf
        hit_sum = np.bincount(which, weights=correct.astype(float), minlength=15)
        total += float(np.abs(conf_sum - hit_sum).sum()) / len(conf)
    return total / draws
