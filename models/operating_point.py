"""Threshold choice on a held-out split: for a stated sensitivity or specificity, a conformal
review band, or a quality threshold for what the classical gate lets through."""

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
    if not is_pos.any():
        raise ValueError("no positive examples to choose a sensitivity threshold on")
    return _threshold_missing(scores[is_pos], scores[~is_pos], allowed_misses(target, is_pos))


def allowed_misses(target: float, positive: np.ndarray) -> int:
    """How many positives may fall below a threshold that must reach recall `target`."""
    return int(np.floor((1.0 - target) * int(positive.astype(bool).sum()) + 1e-9))


def _threshold_missing(positives: np.ndarray, negatives: np.ndarray, misses: int) -> float:
    """The highest threshold with exactly `misses` positives below it, lowered into the gap."""
    pos = np.sort(positives)
    highest = float(pos[misses])
    neg = negatives
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


# The highest reject threshold the gate rule may choose. At or above 0.5 the calibrated net
# says "ungradable" is the more likely class; a threshold above that would let a scan the net
# itself calls ungradable reach an all-clear on the classical checks alone, and a twin on which
# the classical gate happens to catch every reject would switch the net off entirely.
MAX_GATE_THRESHOLD = 0.5


@dataclass(frozen=True)
class GateThreshold:
    """The quality net's `reject` threshold chosen for what the classical gate lets through.

    A reject is "protected" (it cannot get an all-clear) when a classical check rejected or
    warned on it, or when the net is in doubt: p >= doubt_fraction x threshold.
    """

    threshold: float
    doubt_level: float  # doubt_fraction x threshold: from here up, no all-clear
    doubt_fraction: float
    target: float
    cap: float
    capped: bool  # True: the recall target allowed more, the cap held it
    n_rejects: int
    n_classical_missed: int  # rejects no classical check objected to
    allowed_misses: int  # rejects that may go unprotected at the target

    def record(self) -> dict[str, float | int | bool | str]:
        return {
            "criterion": (
                f"largest threshold <= {self.cap} at which >= {self.target} of the gate set's "
                "rejects are protected: classical reject or warning, or net p >= "
                f"{self.doubt_fraction} x threshold"
            ),
            "doubt_fraction": self.doubt_fraction,
            "doubt_level": self.doubt_level,
            "protected_recall_target": self.target,
            "cap": self.cap,
            "capped": self.capped,
            "n_rejects": self.n_rejects,
            "n_classical_missed": self.n_classical_missed,
            "allowed_misses": self.allowed_misses,
        }


def protected(
    p_reject: np.ndarray, classical: np.ndarray, threshold: float, doubt_fraction: float
) -> np.ndarray:
    """Scans that cannot get an all-clear: a classical finding, or the net in doubt."""
    return classical.astype(bool) | (p_reject >= doubt_fraction * threshold)


def gate_reject_threshold(
    p_reject: np.ndarray,
    reject: np.ndarray,
    classical: np.ndarray,
    *,
    doubt_fraction: float,
    target: float,
    cap: float = MAX_GATE_THRESHOLD,
) -> GateThreshold:
    """The largest threshold <= cap at which >= target of the rejects are protected.

    Only rejects the classical gate missed (no reject, no warning) need the net. If no more of
    them than the target allows remain, the cap is the threshold. Otherwise the doubt level is
    the highest one leaving exactly the allowed number of them below it, lowered midway into
    the gap to the highest unflagged gradable scan below (as `threshold_for_sensitivity` does),
    which keeps every all-clear that level gives and protects every reject the gap allows.
    """
    p = np.asarray(p_reject, dtype=np.float64)
    is_reject, flagged = reject.astype(bool), classical.astype(bool)
    if not (len(p) == len(is_reject) == len(flagged)):
        raise ValueError(
            f"gate threshold: {len(p)} scores, {len(is_reject)} labels and {len(flagged)} "
            "classical flags; pass one of each per scan"
        )
    if not 0.0 < doubt_fraction <= 1.0:
        raise ValueError(f"doubt_fraction {doubt_fraction} must lie in (0, 1]")
    if not 0.0 < target <= 1.0:
        raise ValueError(f"recall target {target} must lie in (0, 1]")
    if not 0.0 < cap <= 1.0:
        raise ValueError(f"cap {cap} must lie in (0, 1]")
    if not is_reject.any():
        raise ValueError("no rejects in the gate set to choose a reject threshold on")
    misses = allowed_misses(target, is_reject)
    missed = is_reject & ~flagged
    if int(missed.sum()) <= misses:
        threshold = cap
    else:
        doubt = _threshold_missing(p[missed], p[~is_reject & ~flagged], misses)
        threshold = doubt / doubt_fraction
        while doubt_fraction * threshold > doubt:  # a rounding step must not lift the level
            threshold = float(np.nextafter(threshold, 0.0))
        threshold = min(cap, threshold)
    return GateThreshold(
        threshold=float(threshold),
        doubt_level=float(doubt_fraction * threshold),
        doubt_fraction=doubt_fraction,
        target=target,
        cap=cap,
        capped=bool(int(missed.sum()) <= misses or threshold == cap),
        n_rejects=int(is_reject.sum()),
        n_classical_missed=int(missed.sum()),
        allowed_misses=misses,
    )


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
