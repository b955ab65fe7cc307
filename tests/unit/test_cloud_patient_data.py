"""The cloud keeps a review case's pixels, never the upload with its patient tags, and deletes
even the pixels `image_retention_days` after the case is decided (SQLite and PostgreSQL).

The grader call is a fixed, uncertain answer: what is stored is the rule under test, not grading.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from cloud.grader import GradeJob
from cloud.grading import Grading
from cloud.retention import DAY_S, ImageRetention
from cloud.service import GradeInput, GradingService
from cloud.store import CloudStore
from shared.config import CloudConfig
from tests.scan_corpus import dicom

PATIENT = {"PatientName": "DOE^JANE", "PatientID": "MRN-4711-0815", "PatientBirthDate": "19610203"}


def _fundus(seed: int) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 255, (300, 320, 3), dtype=np.uint8)
    return rgb


def _grade(service: GradingService, scan_id: str, body: bytes) -> None:
    inp = GradeInput(
        scan_id=scan_id, image=body, content_type="application/dicom", site_id="clinic-a"
    )
    result, _ = asyncio.run(service.grade(inp, "http"))
    assert result.needs_review  # the case, with its image, is what this test looks at


async def _uncertain(job: GradeJob) -> Grading:
    return Grading([0.2, 0.3, 0.3, 0.1, 0.1], 0.5, 1, "fundus-dr:7", {"referable": 0.5})


def test_a_posted_dicom_is_kept_as_its_pixels_only_never_its_tags(
    store: CloudStore, tmp_path: Path
) -> None:
    rgb = _fundus(1)
    body = dicom(rgb, **PATIENT)
    assert b"MRN-4711-0815" in body and b"DOE^JANE" in body
    _grade(GradingService(store, _uncertain, (0.3, 0.7), "fundus-dr"), "s-dicom", body)
    (case,) = store.cases(status="open")
    assert case.content_type == "image/png"
    for value in PATIENT.values():
        assert value.encode() not in case.image
    kept = cv2.imdecode(np.frombuffer(case.image, np.uint8), cv2.IMREAD_COLOR)
    assert kept is not None
    assert np.array_equal(kept, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))  # lossless pixels
    if store.dialect == "sqlite":  # nowhere in the database file either (WAL included)
        for path in tmp_path.glob("*.sqlite3*"):
            assert b"MRN-4711-0815" not in path.read_bytes(), path


def test_decided_images_are_deleted_after_the_retention_days_open_ones_kept(
    store: CloudStore,
) -> None:
    service = GradingService(store, _uncertain, (0.3, 0.7), "fundus-dr")
    for i, scan_id in enumerate(("s-decided", "s-open")):
        _grade(service, scan_id, dicom(_fundus(i)))
    decided = next(c for c in store.cases(status="open") if c.scan_id == "s-decided")
    store.decide(decided.case_id, "grade2", "alice")
    rule = ImageRetention(store, days=30)
    now = time.time()
    assert rule.purge(now=now + 29 * DAY_S) == 0  # younger than the rule: kept
    assert rule.purge(now=now + 31 * DAY_S) == 1
    by_scan = {c.scan_id: c for c in store.cases(status=None)}
    assert by_scan["s-decided"].image == b"" and by_scan["s-decided"].heatmap_png == b""
    assert by_scan["s-decided"].label == "grade2"  # the decision itself stays
    assert by_scan["s-open"].image != b""  # a reviewer has not seen it yet
    assert rule.purge(now=now + 400 * DAY_S) == 0  # nothing left to delete


def test_the_grading_path_applies_the_configured_rule(store: CloudStore) -> None:
    days = CloudConfig(image_retention_days=1e-6).image_retention_days  # ~0.09 s
    _grade(
        GradingService(store, _uncertain, (0.3, 0.7), "fundus-dr", days), "s-old", dicom(_fundus(3))
    )
    (case,) = store.cases(status="open")
    store.decide(case.case_id, "grade1", "alice")
    time.sleep(0.2)  # the decision is now older than the rule
    # The next grade (here in a restarted service) runs the purge on its way.
    _grade(
        GradingService(store, _uncertain, (0.3, 0.7), "fundus-dr", days), "s-new", dicom(_fundus(4))
    )
    assert store.case(case.case_id).image == b""
    assert next(c for c in store.cases(status="open") if c.scan_id == "s-new").image != b""


def test_retention_days_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="image_retention_days"):
        CloudConfig(image_retention_days=0)
