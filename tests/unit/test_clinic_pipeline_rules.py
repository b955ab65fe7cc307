"""Verdict rules that need no model: triage thresholds, OOD scores, the quality check registry."""

from __future__ import annotations

import numpy as np
import pytest

from edge.backends import Prediction
from edge.clinic.decode import decode_pixels, read_header
from edge.clinic.ood import OodReference, energy, guard, mahalanobis
from edge.clinic.quality import CHECKS, QualityCheck, QualityView, assess, register
from edge.clinic.triage import TriagePolicy
from edge.clinic.verdict import triage
from shared.errors import ModelRefusedError
from shared.preprocess import PreprocessSpec
from shared.probabilities import softmax
from shared.registry import Manifest
from shared.verdicts import Verdict
from tests.unit.test_clinic_pipeline_decode import fundus_like


def manifest(**fields: object) -> Manifest:
    spec = PreprocessSpec()
    base: dict[str, object] = {
        "name": "fundus-triage",
        "version": "3",
        "task": "triage",
        "created_at": "2026-01-01T00:00:00+00:00",
        "preprocess": spec,
        "preprocess_hash": spec.content_hash(),
        "input_shape": ["batch", 3, 224, 224],
        "labels": ["not_referable", "referable"],
        "thresholds": {"clear": 0.2, "refer": 0.7},
    }
    base.update(fields)
    return Manifest.model_validate(base)


def prediction(p_referable: float, features: np.ndarray | None = None) -> Prediction:
    probs = np.array([1 - p_referable, p_referable])
    logits = np.log(np.clip(probs, 1e-12, 1))
    return Prediction(logits, probs, features)


@pytest.mark.parametrize(
    ("p", "verdict"),
    [
        (0.05, Verdict.NO_IMMEDIATE_CONCERN),
        (0.2, Verdict.REVIEW),  # the clear threshold itself is not "clear"
        (0.5, Verdict.REVIEW),
        (0.7, Verdict.REFER),
        (0.95, Verdict.REFER),
    ],
)
def test_triage_bands_follow_the_thresholds(p: float, verdict: Verdict) -> None:
    policy = TriagePolicy(manifest())
    read = policy.probability(prediction(p))
    call = triage(read, policy.clear, policy.refer)
    assert call.verdict == verdict
    assert read == pytest.approx(p)
    assert 0.0 <= call.confidence <= 1.0


def test_a_nan_probability_is_review_never_clear() -> None:
    nan = Prediction(np.array([np.nan, np.nan]), np.array([np.nan, np.nan]), None)
    policy = TriagePolicy(manifest())
    assert triage(policy.probability(nan), policy.clear, policy.refer).verdict == Verdict.REVIEW


def test_triage_refuses_a_manifest_without_its_operating_point() -> None:
    with pytest.raises(ModelRefusedError, match="'refer', 'clear'"):
        TriagePolicy(manifest(thresholds={"refer": 0.5}))
    with pytest.raises(ModelRefusedError, match="clear"):
        TriagePolicy(manifest(thresholds={"clear": 0.8, "refer": 0.5}))


def test_ood_scores_match_the_model_factory_definitions() -> None:
    from models.ood import energy as factory_energy
    from models.ood import mahalanobis as factory_mahalanobis

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3))
    feats = rng.normal(size=(4, 8))
    mean, precision = feats.mean(axis=0), np.eye(8) * 0.5
    for i in range(4):
        assert energy(logits[i]) == pytest.approx(float(factory_energy(logits)[i]))
        expected = float(factory_mahalanobis(feats, mean, precision)[i])
        assert mahalanobis(feats[i], mean, precision) == pytest.approx(expected)


def test_features_far_from_the_training_data_raise_an_ood_signal() -> None:
    ood = {
        "feature_mean": [0.0] * 4,
        "feature_precision": np.eye(4).tolist(),
        "mahalanobis_threshold": 3.0,
        "energy_threshold": 5.0,
    }
    reference = OodReference(manifest(extra={"ood": ood}))
    near = guard({"triage": (reference, prediction(0.1, np.array([0.5, 0.0, 0.0, 0.0])))})
    far = guard({"triage": (reference, prediction(0.1, np.array([9.0, 9.0, 0.0, 0.0])))})
    assert not near.out_of_distribution
    assert far.out_of_distribution and far.signals[0].code == "ood_mahalanobis"
    assert far.scores["triage_mahalanobis"] == pytest.approx(np.sqrt(162))


def test_softmax_is_stable_for_huge_logits() -> None:
    probs = softmax(np.array([[1000.0, 0.0]]), temperature=0.5)
    assert np.isfinite(probs).all() and probs[0, 0] == pytest.approx(1.0)


def test_a_quality_check_name_can_be_registered_only_once() -> None:
    class Sharpness(QualityCheck):
        name = "sharpness"

        def measure(self, view: QualityView) -> float:
            return 0.0

    with pytest.raises(ValueError, match="already registered"):
        register(Sharpness)
    assert CHECKS["sharpness"] is not Sharpness


def test_check_bounds_reject_before_warning() -> None:
    check = CHECKS["exposure"]()
    low_reject, low_warn = check.low
    assert low_reject is not None and low_warn is not None
    rejected = check.judge(low_reject - 1)
    warned = check.judge((low_reject + low_warn) / 2)
    assert rejected is not None and rejected.severity == "reject"
    assert warned is not None and warned.severity == "warn"
    assert check.judge(low_warn + 30) is None


def test_a_plain_disc_has_a_circular_field_of_view_but_no_detail() -> None:
    report = assess(fundus_like(800))
    assert report.fov.found and report.measures["fov_in_frame"] > 0.99
    assert "fov_missing" not in {f.code for f in report.findings}
    assert "blur" in {f.code for f in report.rejects}  # a flat disc has no vessels: unreadable


def test_tiff_scans_decode_like_png() -> None:
    import cv2

    image = fundus_like(300)
    data = cv2.imencode(".tiff", image)[1].tobytes()
    header = read_header(data, "tiff")
    assert (header.width, header.height, header.channels) == (300, 300, 3)
    assert np.array_equal(decode_pixels(data, header), image)
