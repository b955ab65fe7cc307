"""Verdicts from grade probabilities; the review band and tier disagreement go to a human."""

from __future__ import annotations

from shared.decision import decide, review_band
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


def test_the_grader_settles_the_edge_triage_nets_uncertainty():
    d = decide(0.05, THRESHOLDS, (0.3, 0.5), "review", edge_codes=("triage_review",))
    assert d.verdict is Verdict.NO_IMMEDIATE_CONCERN and not d.needs_review


def test_a_photograph_the_gateway_doubts_it_can_read_is_never_cleared_by_the_grade_alone():
    codes = ("triage_no_immediate_concern", "quality_doubt", "mirror_disagrees")
    d = decide(0.05, THRESHOLDS, (0.3, 0.5), "review", edge_codes=codes)
    assert d.verdict is Verdict.REVIEW and d.needs_review
    assert d.grade_verdict is Verdict.NO_IMMEDIATE_CONCERN
    assert "(quality_doubt, mirror_disagrees): the grade alone cannot clear it" in d.review_reason
    # a referral on a doubtful photograph is still a referral: a person sees it anyway
    assert decide(0.95, THRESHOLDS, (0.3, 0.5), "refer", edge_codes=("blur",)).verdict is (
        Verdict.REFER
    )


def test_an_unfamiliar_photograph_gets_no_automatic_answer_from_the_cloud_either():
    for codes in (("quality_net",), ("quality_net", "underexposed"), ("ood_energy",)):
        for p in (0.02, 0.98):
            d = decide(p, THRESHOLDS, (0.3, 0.5), "review", edge_codes=codes)
            assert d.verdict is Verdict.REVIEW and d.needs_review, (codes, p)
            assert "found the photograph unfamiliar" in d.review_reason
