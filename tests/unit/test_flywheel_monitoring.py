"""Prediction log, feature summary and concept drift: the numpy-only parts the edge runs too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.reference import describe
from models.reference import image_statistics as factory_statistics
from shared.errors import EdgewardError
from shared.monitoring.check import concept_drift, reference_sample
from shared.monitoring.drift import ks_2samp
from shared.monitoring.prediction_log import LoggedPrediction, PredictionLog
from shared.monitoring.summary import embedding_sketch, feature_summary, image_statistics
from sim.fundus.generator import generate_sample


def test_feature_summary_measures_like_the_model_factory_reference() -> None:
    view = generate_sample(3, 1, size=160).image_bgr
    assert image_statistics(view) == factory_statistics(view)
    summary = feature_summary(view, np.arange(64.0), {"blur": 0.3})
    assert {"sketch_0", "sketch_3", "quality.blur", "red_green_ratio"} <= set(summary)


def test_embedding_sketch_is_the_same_projection_every_time() -> None:
    f = np.random.default_rng(1).standard_normal(64)
    assert embedding_sketch(f) == embedding_sketch(f.copy())
    assert embedding_sketch(f) != embedding_sketch(-f)


def test_log_stores_pseudonyms_not_scan_ids_and_joins_reviewer_labels(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log.db", b"site-key")
    kw = {"tier": "edge", "model": "m", "model_version": "m:1", "features": {"brightness": 1.0}}
    assert log.record("PATIENT-4711-scan", confidence=0.9, prediction=1, **kw)  # type: ignore[arg-type]
    assert not log.record("PATIENT-4711-scan", confidence=0.9, prediction=1, **kw)  # type: ignore[arg-type]
    log.add_label("PATIENT-4711-scan", 0)
    log.close()
    assert b"PATIENT-4711" not in (tmp_path / "log.db").read_bytes()
    rows = PredictionLog(tmp_path / "log.db", b"site-key").rows("m")
    assert len(rows) == 1 and rows[0].label == 0 and rows[0].features == {"brightness": 1.0}


def test_log_refuses_a_confidence_outside_0_1(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log.db", b"k")
    with pytest.raises(EdgewardError, match=r"confidence 1\.7 .* outside 0\.\.1"):
        log.record("s", tier="edge", model="m", model_version="m:1", confidence=1.7, features={})


def test_reference_sample_follows_the_reference_distribution() -> None:
    values = np.random.default_rng(0).lognormal(0, 0.8, 400)  # skewed, like sharpness
    desc = describe(values)
    sample = reference_sample(desc)
    assert len(sample) == 400
    assert ks_2samp(values, sample)[1] > 0.5
    del desc["quantiles"]  # older manifests: histogram only
    hist_sample = reference_sample(desc)
    edges = desc["histogram"]["edges"]
    assert np.array_equal(np.histogram(hist_sample, bins=edges)[0], desc["histogram"]["counts"])


def _rows(tmp_path: Path, correct: list[bool]) -> list[LoggedPrediction]:
    log = PredictionLog(tmp_path / "c.db", b"k")
    for i, ok in enumerate(correct):
        log.record(f"s{i}", tier="cloud", model="m", model_version="m:1", confidence=0.8,
                   prediction=1, features={})  # fmt: skip
        log.add_label(f"s{i}", 1 if ok else 0)
    return log.rows("m")


def test_accuracy_drop_on_reviewed_cases_is_concept_drift(tmp_path: Path) -> None:
    rows = _rows(tmp_path, [True] * 100 + [i % 2 == 0 for i in range(100)])
    result = concept_drift(rows, window=100)
    assert result.drifted
    assert result.recent_accuracy == pytest.approx(0.5)
    assert result.reference_accuracy == pytest.approx(1.0)


def test_steady_accuracy_is_not_concept_drift(tmp_path: Path) -> None:
    rows = _rows(tmp_path, [i % 5 != 0 for i in range(200)])
    result = concept_drift(rows, window=100)
    assert not result.drifted
    assert result.recent_accuracy == pytest.approx(0.8)
