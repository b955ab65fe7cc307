"""Threshold choice on the validation split, for a stated sensitivity or specificity."""

from __future__ import annotations

from dataclasses import dataclass

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


# The narrowest review band the grader may have, in referable probability. On a twin the grader
# separates perfectly, the conformal bounds cross and the band would otherwise shrink to nothing
# (all three thresholds once sat at 0.484): then no real photograph could ever reach a human on
# confidence, however unfamiliar it is.
MIN_BAND_WIDTH = 0.2


@dataclass(frozen=True)
class ReviewBand:
    """[low, high) of P(referable): below it cleared, at or above high referred, between reviewed.

    `low` carries the split-conformal guarantee: for a new referable eye exchangeable with the
    calibration split, P(score < low) <= alpha (a false all-clear). `high` bounds the share of
    non-referable eyes referred without review by beta the same way. Both ends only move outward
    after that (widening keeps both bounds), so the band is never narrower than `min_width`.
    """

    low: float
    high: float
    alpha: float
    beta: float
    conformal_low: float
    conformal_high: float
    n_positive: int
    n_negative: int
    min_width: float

    def record(self) -> dict[str, float | int | str]:
        return {
            "method": "split-conformal on the validation split (held out from training)",
            "guarantee": (
                f"P(referable eye scored below review_low) <= {self.alpha}; "
                f"P(non-referable eye scored at or above review_high) <= {self.beta}"
            ),
            "alpha_false_all_clear": self.alpha,
            "beta_unreviewed_referral": self.beta,
            "conformal_low": self.conformal_low,
            "conformal_high": self.conformal_high,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "min_width": self.min_width,
        }


def conformal_clear_threshold(scores: np.ndarray, positive: np.ndarray, alpha: float) -> float:
    """The highest t with P(S < t) <= alpha for a new positive, distribution-free.

    With the n calibration positives sorted, a new exchangeable positive falls below the k-th
    smallest with probability k / (n + 1); k = floor(alpha (n + 1)). When n is too small for any
    k >= 1 (n < 1/alpha - 1), nothing may be cleared: the threshold is 0.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha {alpha} must lie strictly between 0 and 1")
    pos = np.sort(np.asarray(scores, dtype=np.float64)[positive.astype(bool)])
    k = int(np.floor(alpha * (len(pos) + 1) + 1e-9))
    return float(pos[k - 1]) if k >= 1 else 0.0


def conformal_refer_threshold(scores: np.ndarray, negative: np.ndarray, beta: float) -> float:
    """The lowest t with P(S >= t) <= beta for a new negative (the mirror of the clear side).

    Just above the k-th largest negative, k = floor(beta (n + 1)); 1.0 when n is too small.
    """
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta {beta} must lie strictly between 0 and 1")
    neg = np.sort(np.asarray(scores, dtype=np.float64)[negative.astype(bool)])[::-1]
    k = int(np.floor(beta * (len(neg) + 1) + 1e-9))
    return min(1.0, float(np.nextafter(neg[k - 1], np.inf))) if k >= 1 else 1.0


def conformal_band(
    scores: np.ndarray,
    positive: np.ndarray,
    alpha: float,
    beta: float,
    min_width: float = MIN_BAND_WIDTH,
) -> ReviewBand:
    """The review band of P(referable) for a false-all-clear rate <= alpha (see ReviewBand)."""
    if not 0.0 < min_width <= 1.0:
        raise ValueError(f"min_width {min_width} must lie in (0, 1]")
    s = np.asarray(scores, dtype=np.float64)
    pos = positive.astype(bool)
    low_c = conformal_clear_threshold(s, pos, alpha)
    high_c = conformal_refer_threshold(s, ~pos, beta)
    low, high = min(low_c, high_c), max(low_c, high_c)
    if high - low < min_width:
        high = min(1.0, low + min_width)
        low = max(0.0, high - min_width)
    return ReviewBand(
        low=low,
        high=high,
        alpha=alpha,
        beta=beta,
        conformal_low=low_c,
        conformal_high=high_c,
        n_positive=int(pos.sum()),
        n_negative=int((~pos).sum()),
        min_width=min_width,
    )
