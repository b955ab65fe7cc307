"""Verdicts from grade probabilities; the review band and tier disagreement go to a human."""

from __future__ import annotations

from cloud.decision import decide, review_band
from shared.verdicts import Verdict

THRESHOLDS = {"referable": 0.4, "review_low": 0.3, "review_high": 0.5}


def test_review_band_is_the_wider_of_operator_and_model():
    assert review_band(THRESHOLDS, (0.35, 0.45)) == (0.3, 0.5)
    assert review_band(THRESHOLDS, (0.2, 0.8)) == (0.2, 0.8)
    assert review_band({}, (0.2, 0.8)) == (0.2, 0.8)


def test_confident_grades_get_a_verdict_without_review():
    refer = decide(0.95, THRESHOLDS, (0.3, 0.5))
    clear = decide(0.05, THRESHOLDS, (0.3, 0.5))
    assert refer.verdict is Verdict.REFER and not refer.needs_review
    assert clear.verdict is Verdict.NO_IMMEDIATE_CONCERN and clear.confidence == 0.95


def test_uncertain_grade_goes_to_review_with_the_probability_named():
    d = decide(0.45, THRESHOLDS, (0.3, 0.5))
    assert d.verdict is Verdict.REVIEW and d.needs_review
    assert "0.45" in d.review_reason and d.grade_verdict is Verdict.REFER


def test_edge_and_cloud_disagreement_goes_to_review():
    d = decide(0.95, THRESHOLDS, (0.3, 0.5), edge_verdict="no_immediate_concern")
    assert d.verdict is Verdict.REVIEW
    assert "edge triage said no_immediate_concern, cloud grade says refer" in d.review_reason
    agree = decide(0.95, THRESHOLDS, (0.3, 0.5), edge_verdict="refer")
    assert not agree.needs_review
