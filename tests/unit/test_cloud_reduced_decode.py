"""The cloud grades a large JPEG from a reduced decode, yet answers in the scan's own pixels.

The grader call is a fixed answer that records what it was given: the rule under test is what
the grading path decodes, hands over, reports and keeps, not the model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud.decode import decode_scan, decode_scan_scaled
from cloud.explain import HotRegion
from cloud.grader import GradeJob
from cloud.grading import Grading
from cloud.service import GradeInput, GradingService, full_size
from cloud.store import CloudStore
from shared.scan_decode import decode as shared_decode


def _jpeg(width: int, height: int) -> bytes:
    rng = np.random.default_rng(7)
    img = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (9, 9), 3)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


class Recorder:
    """An uncertain grade with one hot region in the given image's pixels; keeps the images."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    async def __call__(self, job: GradeJob) -> Grading:
        self.shapes.append(job.image.shape)
        h, w = job.image.shape[:2]
        region = HotRegion(x=w // 4, y=h // 4, width=w // 2, height=h // 2, score=1.0)
        return Grading(
            [0.2, 0.3, 0.3, 0.1, 0.1], 0.5, 1, "g:1", {"referable": 0.5}, regions=[region]
        )


@pytest.fixture
def store(tmp_path: Path) -> CloudStore:
    return CloudStore(tmp_path)


def test_a_large_jpeg_is_graded_reduced_but_answered_and_kept_at_full_size(
    store: CloudStore,
) -> None:
    body = _jpeg(1024, 960)
    grader = Recorder()
    service = GradingService(store, grader, (0.3, 0.7), "g", decode_min_side=384)
    result, _ = asyncio.run(
        service.grade(GradeInput("s-big", body, "image/jpeg", site_id="c"), "http")
    )
    assert grader.shapes == [(480, 512, 3)]  # DCT-scaled by 2: 512 px still >= 384
    (region,) = result.regions
    assert (region.x, region.y, region.width, region.height) == (256, 240, 512, 480)
    assert result.needs_review
    (case,) = store.cases(status="open")
    kept = cv2.imdecode(np.frombuffer(case.image, np.uint8), cv2.IMREAD_COLOR)
    assert kept is not None
    assert np.array_equal(kept, decode_scan(body, "image/jpeg"))  # the reviewer's full scan


def test_reduced_decode_is_the_shared_rule_and_small_or_unset_means_full_size() -> None:
    body = _jpeg(1024, 960)
    scaled = decode_scan_scaled(body, "image/jpeg", min_side=384)
    edge_pixels, _ = shared_decode(body, content_type="image/jpeg", min_side=384)
    assert scaled.factor == 2 and (scaled.width, scaled.height) == (1024, 960)
    assert np.array_equal(scaled.image, edge_pixels)  # what the edge gets for the same side
    assert decode_scan_scaled(body, "image/jpeg", min_side=1000).factor == 1
    assert decode_scan_scaled(body, "image/jpeg").image.shape == (960, 1024, 3)


def test_a_region_scaled_back_never_leaves_the_scan() -> None:
    scan = decode_scan_scaled(_jpeg(1000, 998), "image/jpeg", min_side=200)
    assert scan.factor == 4  # 250 x 250 decoded
    edge = full_size(HotRegion(x=240, y=249, width=10, height=1, score=0.5), scan)
    assert edge.x + edge.width <= 1000 and edge.y + edge.height <= 998
    assert (edge.x, edge.y, edge.score) == (960, 996, 0.5)
