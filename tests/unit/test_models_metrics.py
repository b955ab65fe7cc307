"""Metrics, calibration and threshold choice of the model factory."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from models.calibrate import fit_temperature
from models.metrics import auc, ece, subgroup_metrics
from models.operating_point import (
    MIN_BAND_WIDTH,
    threshold_for_sensitivity,
    threshold_for_specificity,
)
from models.tasks import GraderTask, TriageTask, quadratic_kappa, referable_probability
from shared.probabilities import softmax


def test_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(1)
    scores = np.round(rng.random(300), 1)  # many ties
    labels = rng.random(300) < 0.4
    assert abs(auc(scores, labels) - roc_auc_score(labels, scores)) < 1e-12


def test_auc_of_one_class_is_nan_not_a_number_that_looks_real() -> None:
    assert np.isnan(auc(np.array([0.1, 0.9]), np.array([True, True])))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=5, max_size=80),
    st.floats(0.5, 1.0),
)
def test_sensitivity_threshold_keeps_at_least_the_target(
    scores: list[float], target: float
) -> None:
    s = np.array(scores)
    positive = np.ones(len(s), dtype=bool)
    t = threshold_for_sensitivity(s, positive, target)
    assert (s >= t).mean() >= target - 1e-9


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=5, max_size=80), st.floats(0.5, 1.0))
def test_specificity_threshold_keeps_at_least_the_target(
    scores: list[float], target: float
) -> None:
    s = np.array(scores)
    positive = np.zeros(len(s), dtype=bool)
    t = threshold_for_specificity(s, positive, target)
    assert (s < t).mean() >= target - 1e-9


def test_perfect_separation_gets_full_sensitivity_not_just_the_target() -> None:
    scores = np.array([0.01, 0.02, 0.05, 0.6, 0.97, 0.98, 0.99, 0.995, 0.999, 0.9999])
    positive = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    t = threshold_for_sensitivity(scores, positive, 0.8)
    assert (scores[positive] >= t).all() and (scores[~positive] < t).all()


def test_sensitivity_threshold_keeps_the_best_specificity_for_overlapping_scores() -> None:
    scores = np.array([0.1, 0.3, 0.5, 0.7, 0.2, 0.4, 0.6, 0.8, 0.9])
    positive = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1], dtype=bool)
    t = threshold_for_sensitivity(scores, positive, 0.6)
    assert (scores[positive] >= t).mean() >= 0.6
    assert (scores[~positive] < t).mean() == 0.75  # the most any 60%-sensitive threshold keeps


def test_temperature_scaling_recovers_the_temperature_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2.0, size=(4000, 3))
    probs = softmax(true_logits)
    labels = np.array([rng.choice(3, p=p) for p in probs])
    overconfident = true_logits * 2.5  # a net that is 2.5x too sure
    t = fit_temperature(overconfident, labels)
    assert 2.2 < t < 2.8
    assert ece(softmax(overconfident, t), labels) < ece(softmax(overconfident), labels)


def test_referable_probability_sums_grades_two_and_above() -> None:
    probs = np.array([[0.5, 0.2, 0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 0.0, 1.0]])
    assert np.allclose(referable_probability(probs), [0.3, 1.0])


def test_triage_thresholds_leave_a_review_band_and_clear_few_referable_eyes() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.4).astype(np.int64)
    p = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, 0.2, 2000), 0, 1)
    probs = np.stack([1 - p, p], axis=1)
    th, op = TriageTask().choose(probs, y)
    assert th["refer"] - th["clear"] >= MIN_BAND_WIDTH - 1e-12
    cleared_referable = (p[y == 1] < th["clear"]).mean()
    assert cleared_referable <= 0.03 + 1e-9
    assert op["review_band"]["alpha_false_all_clear"] == 0.03


def test_triage_band_never_collapses_on_perfectly_separated_scores() -> None:
    # The twin separates almost perfectly: quantile thresholds alone met at one point and
    # nothing the net was unsure of could reach a person.
    y = np.array([0] * 300 + [1] * 300)
    p = np.where(y == 1, 0.99, 0.01)
    th, _ = TriageTask().choose(np.stack([1 - p, p], axis=1), y)
    assert th["refer"] - th["clear"] >= MIN_BAND_WIDTH - 1e-12
    assert th["clear"] <= 0.99


def test_grader_review_band_brackets_the_referable_threshold() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, 1500)
    logits = rng.normal(0, 1, (1500, 5))
    logits[np.arange(1500), y] += 2.0
    th, op = GraderTask().choose(softmax(logits), y)
    assert th["review_low"] <= th["referable"] <= th["review_high"]
    assert op["validation"]["sensitivity"] >= 0.95


def test_quadratic_kappa_is_one_for_perfect_and_low_for_random_grades() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 5, 500)
    assert quadratic_kappa(y, y, 5) == 1.0
    assert abs(quadratic_kappa(rng.integers(0, 5, 500), y, 5)) < 0.15


def test_subgroup_gap_is_the_spread_between_subgroups_of_one_attribute() -> None:
    values = np.array([0.9] * 20 + [0.6] * 20)
    groups = {"camera": np.array(["a"] * 20 + ["b"] * 20), "side": np.array(["L", "R"] * 20)}
    per, gaps = subgroup_metrics(groups, lambda idx: {"score": float(values[idx].mean())})
    assert abs(per["camera"]["a"]["score"] - 0.9) < 1e-9
    assert per["camera"]["a"]["n"] == 20
    assert abs(gaps["score.camera"] - 0.3) < 1e-9
    assert gaps["score.side"] < 1e-9
    assert gaps["score"] == gaps["score.camera"]
