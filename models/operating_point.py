"""Threshold choice on the validation split, for a stated sensitivity or specificity."""

from __future__ import annotations

import numpy as np


def threshold_for_sensitivity(scores: np.ndarray, positive: np.ndarray, target: float) -> float:
    """The best-specificity threshold t with mean(scores[positive] >= t) >= target.

    The highest such threshold gives the best specificity; it is then lowered to midway
    between the highest negative below it and the next positive, which keeps that specificity
    and catches every positive the gap allows (with a perfectly separating model the
    sensitivity becomes 1, not just the target).
    """
    is_pos = positive.astype(bool)
    pos = np.sort(scores[is_pos])
    if len(pos) == 0:
        raise ValueError("no positive examples to choose a sensitivity threshold on")
    # allowed misses: at most floor((1 - target) * n) positives may fall below t
    misses = int(np.floor((1.0 - target) * len(pos) + 1e-9))
    highest = float(pos[misses])
    neg = scores[~is_pos]
    below = neg[neg < highest]
    if len(below) == 0:
        return float(min(highest, pos[0]))
    lo = float(below.max())
    next_pos = pos[pos > lo]
    return float(min(highest, (lo + float(next_pos[0])) / 2.0)) if len(next_pos) else highest


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
