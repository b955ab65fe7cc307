"""A batch waits for company only while another scan is on its way in the same replica.

The grader's batcher would otherwise hold a lone scan (c=1) for the whole batch wait. The rule
has two halves, each tested with controlled inputs: the grading flow counts the requests that
arrived and have not reached the grader (`GradingService.arriving`), and the grader sets its
batch wait from it (`Grader.grade(more_coming=...)`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cloud.grader import GradeJob, Grader
from cloud.grading import Grading
from cloud.service import GradeInput, GradingService, InvalidRequestError
from cloud.store import CloudStore


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), (9, 9), 3)
    return cv2.imencode(".jpg", img)[1].tobytes()


class Recorder:
    """A confident grade; records how many other requests were arriving when it was called."""

    def __init__(self, service: list[GradingService]) -> None:
        self.service = service
        self.arriving: list[int] = []

    async def __call__(self, job: GradeJob) -> Grading:
        self.arriving.append(self.service[0].arriving)
        return Grading([0.9, 0.05, 0.03, 0.01, 0.01], 0.05, 0, "g:1", {"referable": 0.5})


@pytest.fixture
def setup(tmp_path: Path) -> tuple[GradingService, Recorder]:
    holder: list[GradingService] = []
    grader = Recorder(holder)
    holder.append(GradingService(CloudStore(tmp_path), grader, (0.3, 0.7), "g"))
    return holder[0], grader


def test_a_lone_scan_finds_nobody_arriving_and_the_count_returns_to_zero(setup) -> None:
    service, grader = setup
    asyncio.run(service.grade(GradeInput("s-1", _jpeg(1), "image/jpeg"), "http"))
    assert grader.arriving == [0]
    assert service.arriving == 0


def test_a_scan_whose_body_is_still_coming_counts_as_arriving(setup) -> None:
    service, grader = setup
    other = service.arrival()  # the HTTP ingress counts a request before reading its body
    asyncio.run(service.grade(GradeInput("s-2", _jpeg(2), "image/jpeg"), "http"))
    assert grader.arriving == [1]
    other.handed_over()
    other.handed_over()  # idempotent: a request is uncounted once
    assert service.arriving == 0


def test_a_refused_request_leaves_the_count(setup) -> None:
    service, grader = setup
    with pytest.raises(InvalidRequestError, match="content type"):
        asyncio.run(service.grade(GradeInput("s-3", b"xx", "text/plain"), "http"))
    assert service.arriving == 0 and grader.arriving == []


def test_the_grader_waits_the_configured_time_only_when_more_scans_are_coming(
    quick_registry: Path,
) -> None:
    grader: Any = Grader(str(quick_registry), "fundus-grader", 8, 0.05, explain=False)
    waits: list[float] = []

    async def direct(job: GradeJob) -> Grading:
        waits.append(type(grader)._grade_batch._get_batch_wait_timeout_s())
        return (await asyncio.to_thread(grader.champion.grade, [job.image], False))[0]

    grader._grade_batch = direct  # Serve's batcher needs a replica; its setting is what counts
    image = np.zeros((128, 128, 3), np.uint8)

    async def run() -> None:
        await grader.grade(GradeJob("a", image), more_coming=False)
        await grader.grade(GradeJob("b", image), more_coming=True)
        grader.configure(8, 0.002, False)
        await grader.grade(GradeJob("c", image), more_coming=True)

    asyncio.run(run())
    assert waits == [0.0, 0.05, 0.002]
    grader.champion.close()
