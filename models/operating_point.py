"""Threshold choice on the validation split, for a stated sensitivity or specificity."""

from __future__ import annotations

import numpy as np


def threshold_for_sensitivity(scores: np.ndarray, positive: np.ndarray, target: float) -> float:
    """The highest threshold t with mean(scores[positive] >= t) >= target.

    Highest, because among thresholds that keep the sensitivity it gives the best specificity.
    """
    pos = np.sort(scores[positive.astype(bool)])
    if len(pos) == 0:
        raise ValueError("no positive examples to choose a sensitivity threshold on")
    # allowed misses: at most floor((1 - target) * n) positives may fall below t
    misses = int(np.floor((1.0 - target) * len(pos) + 1e-9))
    return float(pos[misses])


def threshold_for_specificity(scores: np.ndarray, positive: np.ndarray, target: float) -> float:
    """The lowest threshold t with mean(scores[negative] < t) >= target."""
    neg = np.sort(scores[~positive.astype(bool)])
    if len(neg) == 0:
        raise ValueError("no negative examples to choose a specificity threshold on")
    keep = int(np.ceil(target * len(neg) - 1e-9))  # negatives that must score below t
    if keep >= len(neg):
        return float(np.nextafter(neg[-1], np.inf))
    if keep == 0:
        return float(neg[0])
    # just above the keep-th lowest negative, so exactly those score below t
    return float(np.nextafter(neg[keep - 1], np.inf))
