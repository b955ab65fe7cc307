"""The mirror rule with a model that records `mirror_gap` (shared/mirror.py): the verdict reads the
view and its mirror averaged, and only readings further apart than the limit are a doubt."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from edge.backends import Prediction
from edge.clinic import verdict as rules
from edge.clinic.triage import TriagePolicy
from shared.errors import ModelRefusedError
from shared.mirror import MIRROR_GAP, mirror_averaged
from shared.verdicts import Verdict
from tests.unit.test_clinic_pipeline_rules import manifest
from tests.unit.test_clinic_verdict import CLEAR, SUFFIX, evidence

NAN = float("nan")
LIMIT = 1.5  # log-odds
VIEW, MIRRORED = 0.125, 0.3  # 1.10 log-odds apart, in different bands (clear is 0.25)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def read(p: float, view: float, mirrored: float, limit: float | None = LIMIT) -> rules.Judgement:
    e = dataclasses.replace(
        evidence(p=p, mirrored=mirrored), p_referable_view=view, mirror_gap_limit=limit
    )
    return rules.judge(e)


def test_readings_within_the_limit_are_judged_on_their_average() -> None:
    assert abs(logit(VIEW) - logit(MIRRORED)) < LIMIT and VIEW < CLEAR <= MIRRORED
    judged = read(p=0.2, view=VIEW, mirrored=MIRRORED)
    assert judged.verdict is Verdict.NO_IMMEDIATE_CONCERN
    assert judged.codes == ("triage_no_immediate_concern",)
    # the average decides both ways: the same readings with an average past clear are a review
    assert read(p=0.26, view=VIEW, mirrored=MIRRORED).verdict is Verdict.REVIEW


def test_without_a_recorded_limit_different_bands_are_still_a_doubt() -> None:
    judged = read(p=VIEW, view=VIEW, mirrored=MIRRORED, limit=None)
    assert judged.verdict is Verdict.REVIEW
    assert "mirror_disagrees" in judged.codes


def test_readings_further_apart_than_the_limit_demote_an_all_clear_and_say_why() -> None:
    far = 0.5  # 1.95 log-odds from 0.125
    judged = read(p=0.2, view=VIEW, mirrored=far)
    assert judged.verdict is Verdict.REVIEW
    assert judged.codes == ("triage_no_immediate_concern", "mirror_disagrees")
    gap = abs(logit(VIEW) - logit(far))
    assert judged.reasons[1] == (
        "the triage model's answer changes when the photograph is mirrored (probability 0.125, "
        f"mirrored 0.500: {gap:.1f} log-odds apart; 199 in 200 of the scans it was validated on "
        f"stay within {LIMIT:.1f}): it cannot really read this photograph" + SUFFIX
    )


def test_readings_further_apart_than_the_limit_demote_a_referral_too() -> None:
    judged = read(p=0.8, view=0.95, mirrored=0.6)
    assert judged.verdict is Verdict.REVIEW
    assert judged.codes == ("triage_refer", "mirror_disagrees")


@pytest.mark.parametrize(
    ("mirrored", "doubt"),
    [(1 / (1 + math.exp(-(logit(VIEW) + LIMIT))), False), (NAN, True)],
    ids=["at the limit (to rounding): no doubt", "a broken mirror reading (NaN) is a doubt"],
)
def test_the_limit_boundary_and_a_broken_reading(mirrored: float, doubt: bool) -> None:
    judged = read(p=0.2, view=VIEW, mirrored=mirrored, limit=LIMIT + 1e-9)
    assert ("mirror_disagrees" in judged.codes) is doubt


def prediction(logits: list[float], probabilities: np.ndarray) -> Prediction:
    return Prediction(np.array(logits), probabilities, None)


def test_the_policy_reads_the_calibrated_average_of_both_readings() -> None:
    m = manifest(thresholds={"clear": 0.2, "refer": 0.7, MIRROR_GAP: 2.0}, temperature=2.0)
    policy = TriagePolicy(m)
    view, mirrored = [0.0, -3.0], [0.0, 1.0]
    probs = m.probabilities(np.array([view, mirrored]))
    expected = m.probabilities(mirror_averaged(np.array(view), np.array(mirrored))[None])[0][1]
    got = policy.referable_probability(prediction(view, probs[0]), prediction(mirrored, probs[1]))
    assert got == pytest.approx(expected)
    assert got == pytest.approx(1 / (1 + math.exp(1.0 / 2.0)))  # logit gap -1, temperature 2
    assert policy.mirror_gap == 2.0


def test_a_model_without_a_gap_is_read_on_the_view_alone() -> None:
    policy = TriagePolicy(manifest(thresholds={"clear": 0.2, "refer": 0.7}))
    view = prediction([0.0, -3.0], np.array([0.9, 0.1]))
    mirrored = prediction([0.0, 1.0], np.array([0.3, 0.7]))
    assert policy.mirror_gap is None
    assert policy.referable_probability(view, mirrored) == 0.1


def test_a_gap_that_is_not_a_positive_distance_is_refused() -> None:
    with pytest.raises(ModelRefusedError, match=r"mirror_gap .* must be a positive log-odds"):
        TriagePolicy(manifest(thresholds={"clear": 0.2, "refer": 0.7, MIRROR_GAP: 0.0}))
