"""Retraining triggers and the reviewed cases it learns from."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cloud.flywheel.retrain import reviewed_from_store, should_retrain
from cloud.store import ReviewCase, SqliteStore
from shared.config.flywheel import RetrainTriggers
from shared.monitoring.check import ConceptDrift, DriftCheck
from shared.monitoring.drift import DriftResult
from sim.fundus.generator import generate_sample


def _check(drifted: bool) -> DriftCheck:
    result = DriftResult("red_green_ratio", 100, "ks", 0.9, 1e-9, None, None, drifted, "")
    concept = ConceptDrift(0, 100, None, None, False, "")
    return DriftCheck("fundus-grader", 100, [result], concept)


def test_drift_triggers_retraining_and_says_which_feature() -> None:
    go, why = should_retrain(_check(True), 3, RetrainTriggers())
    assert go and "red_green_ratio" in why


def test_enough_new_labels_trigger_retraining_without_drift() -> None:
    triggers = RetrainTriggers(min_new_labels=50)
    assert not should_retrain(_check(False), 49, triggers)[0]
    go, why = should_retrain(_check(False), 50, triggers)
    assert go and "50 new reviewer labels" in why


def test_reviewed_cases_come_from_decided_graded_review_cases(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    jpeg = cv2.imencode(".jpg", generate_sample(1, 0, size=128).image_bgr)[1].tobytes()
    ids = []
    for i, label in enumerate(["grade3", "ungradable", None]):
        case = store.enqueue(
            ReviewCase(f"s{i}", "site-1", "band", "review", "refer", 0.5, 0.5, "fundus-grader:1",
                       jpeg, "image/jpeg", b"")
        )  # fmt: skip
        ids.append(case.case_id)
        if label:
            store.decide(case.case_id, label, reviewer="dr-a")
    cases = reviewed_from_store(store)
    assert [(c.scan_id, c.grade, c.site) for c in cases] == [("s0", 3, "site-1")]
    assert cases[0].image_bgr.shape[2] == 3 and cases[0].image_bgr.dtype == np.uint8
