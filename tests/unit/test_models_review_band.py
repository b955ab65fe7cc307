"""The grader's review band: split-conformal, so false all-clears are bounded, and never empty."""

from __future__ import annotations

import numpy as np
import pytest

from models.operating_point import (
    MIN_BAND_WIDTH,
    conformal_band,
    conformal_clear_threshold,
    conformal_refer_threshold,
)
from models.tasks import GraderTask


def _scores(rng: np.random.Generator, n: int, separation: float) -> tuple[np.ndarray, np.ndarray]:
    positive = rng.random(n) < 0.4
    logit = rng.normal(np.where(positive, separation, -separation), 1.0)
    return 1.0 / (1.0 + np.exp(-logit)), positive


def test_false_all_clear_rate_stays_under_alpha_over_many_calibration_draws():
    # The guarantee is on average over calibration splits: E[P(new positive < low)] <= alpha.
    # Exact here: scores from a known distribution, 400 independent calibration/test pairs.
    rng = np.random.default_rng(0)
    alpha, rates = 0.05, []
    for _ in range(400):
        s_cal, y_cal = _scores(rng, 300, 1.0)
        s_new, y_new = _scores(rng, 2000, 1.0)
        low = conformal_clear_threshold(s_cal, y_cal, alpha)
        rates.append(float((s_new[y_new] < low).mean()))
    assert np.mean(rates) <= alpha  # ~ alpha * floor(alpha(n+1)) / (alpha(n+1))
    assert np.mean(rates) > alpha / 2  # and not vacuous: it clears as much as it may


def test_the_clear_threshold_is_the_kth_smallest_positive():
    scores = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.05, 0.2, 0.8, 0.6, 0.4])
    positive = np.ones(10, dtype=bool)
    # n = 10, alpha = 0.2: k = floor(0.2 * 11) = 2 -> the 2nd smallest, 0.1
    assert conformal_clear_threshold(scores, positive, 0.2) == 0.1
    # alpha too small for 10 positives (needs n >= 1/alpha - 1 = 99): nothing may be cleared
    assert conformal_clear_threshold(scores, positive, 0.01) == 0.0
    negative = ~positive
    assert conformal_refer_threshold(scores, negative, 0.01) == 1.0
    refer = conformal_refer_threshold(scores, positive, 0.2)  # just above the 2nd largest, 0.8
    assert 0.8 < refer < 0.8 + 1e-12


@pytest.mark.parametrize("separation", [0.5, 2.0, 50.0])
def test_band_is_never_narrower_than_its_minimum_even_when_the_twin_separates_perfectly(
    separation: float,
):
    rng = np.random.default_rng(1)
    s, y = _scores(rng, 1000, separation)
    band = conformal_band(s, y, alpha=0.01, beta=0.03)
    assert band.high - band.low >= MIN_BAND_WIDTH - 1e-12
    assert 0.0 <= band.low < band.high <= 1.0
    # widening only lowers the clear end and raises the refer end: both bounds still hold
    assert band.low <= band.conformal_low and band.high >= band.conformal_high


def test_band_of_perfectly_separated_scores_covers_the_gap_between_the_classes():
    s = np.r_[np.full(500, 0.001), np.full(200, 0.999)]
    y = np.r_[np.zeros(500, dtype=bool), np.ones(200, dtype=bool)]
    band = conformal_band(s, y, alpha=0.01, beta=0.03)
    assert band.low == pytest.approx(0.001 + 1e-15, abs=1e-12)  # the negatives' top
    assert band.high == pytest.approx(0.999)  # the positives' bottom: no collapse to one value


def test_bad_alpha_and_width_are_refused_with_the_value():
    s, y = np.array([0.2, 0.8]), np.array([False, True])
    with pytest.raises(ValueError, match=r"alpha 1\.5"):
        conformal_clear_threshold(s, y, 1.5)
    with pytest.raises(ValueError, match="min_width 0"):
        conformal_band(s, y, 0.1, 0.1, min_width=0.0)


def test_grader_thresholds_come_from_the_conformal_band_and_are_recorded():
    rng = np.random.default_rng(4)
    n = 3000
    y = rng.integers(0, 5, n)
    logits = rng.normal(0, 1, (n, 5))
    logits[np.arange(n), y] += 8.0  # a grader that separates its twin perfectly
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    th, op = GraderTask().choose(probs, y)
    assert th["review_high"] - th["review_low"] >= MIN_BAND_WIDTH - 1e-12
    assert th["review_low"] <= th["referable"] <= th["review_high"]
    band = op["review_band"]
    assert band["alpha_false_all_clear"] == GraderTask().false_all_clear_alpha
    assert band["n_positive"] == int((y >= 2).sum())
    metrics = GraderTask().evaluate(probs, y, th)
    assert metrics["false_all_clear_rate"] <= GraderTask().false_all_clear_alpha
    assert 0.0 <= metrics["review_fraction"] <= 1.0
