"""Every cloud grade in the prediction log, and reviewer labels joined to it and to the canary.

The real `Grader` class with real GraderCores (torch, no Ray): only Serve's batcher is replaced
by a direct call, as `@serve.batch` needs a replica context.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cloud.flywheel.grade_log import referable_label
from cloud.grader import GradeFailure, GradeJob, Grader, load_core
from cloud.grading import Grading
from shared.monitoring.prediction_log import PredictionLog, pseudonymise
from sim.flywheel.scenarios import samples
from tests.flywheel_support import add_version, registry_copy

GRADER = "fundus-grader"
KEY = b"cloud-test-key"
FAIR = {"sensitivity": 0.0, "specificity": 0.0, "ece": 0.0}


@pytest.fixture(scope="module")
def jobs() -> list[GradeJob]:
    return [GradeJob(f"s-{s.index}", s.image_bgr) for s in samples("same", 4, seed=9, size=192)]


def _grader(registry: Path, log: Path, canary: dict[str, Any] | None = None) -> Any:
    grader: Any = Grader(
        str(registry), GRADER, explain=False, canary=canary, prediction_log=str(log)
    )

    cores = {"": grader.champion}

    async def direct(job: GradeJob) -> Grading | GradeFailure:
        if job.model_id not in cores:  # what @serve.multiplexed get_model does, minus Serve
            cores[job.model_id] = load_core(Path(registry), job.model_id, GRADER)
        return (await asyncio.to_thread(cores[job.model_id].grade, [job.image], False))[0]

    grader._grade_batch = direct
    return grader


def _grade_all(grader: Any, jobs: list[GradeJob]) -> list[Any]:
    async def run() -> list[Any]:
        return [await grader.grade(GradeJob(j.scan_id, j.image)) for j in jobs]

    return asyncio.run(run())


def test_reviewer_labels_map_to_referable_and_ungradable_to_none() -> None:
    assert [referable_label(f"grade{g}") for g in range(5)] == [0, 0, 1, 1, 1]
    assert referable_label("ungradable") is None


def test_every_grade_off_the_canary_is_logged_pseudonymised_with_image_statistics(
    quick_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: list[GradeJob]
) -> None:
    monkeypatch.setenv("EDGEWARD_SITE_KEY", KEY.decode())
    grader = _grader(quick_registry, tmp_path / "pred.sqlite")
    results = _grade_all(grader, jobs[:4])
    rows = PredictionLog(tmp_path / "pred.sqlite", KEY).rows(GRADER)
    assert [r.pid for r in rows] == [pseudonymise(j.scan_id, KEY) for j in jobs[:4]]
    for row, result in zip(rows, results, strict=True):
        assert (row.tier, row.arm, row.model_version) == ("cloud", "champion", result.model_version)
        assert row.score == pytest.approx(result.referable_probability)
        assert row.confidence == pytest.approx(max(result.probabilities))
        assert {"brightness", "red_green_ratio", "fov_fraction"} <= set(row.features)
        assert row.label is None


def test_grades_are_not_logged_without_a_key_and_still_answered(
    quick_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: list[GradeJob]
) -> None:
    monkeypatch.delenv("EDGEWARD_SITE_KEY", raising=False)
    grader = _grader(quick_registry, tmp_path / "pred.sqlite")
    assert grader.plog is None
    assert all(isinstance(r, Grading) for r in _grade_all(grader, jobs[:1]))
    assert not (tmp_path / "pred.sqlite").exists()


def test_reviewer_labels_join_the_log_and_complete_the_canary_accuracy_gate(
    quick_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: list[GradeJob]
) -> None:
    monkeypatch.setenv("EDGEWARD_SITE_KEY", KEY.decode())
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    add_version(reg, GRADER, subgroup_gap=FAIR)
    canary = {"share": 1.0, "judge_after": 3, "min_requests": 4, "min_labels": 4,
              "max_latency_ratio": 100, "max_accuracy_drop": 1.0}  # fmt: skip
    grader = _grader(reg.root, tmp_path / "pred.sqlite", canary)
    _grade_all(grader, jobs[:4])
    # Enough scans but no reviewer has confirmed any: the canary keeps waiting.
    assert grader.canary.active
    plog = PredictionLog(tmp_path / "pred.sqlite", KEY)
    assert {r.arm for r in plog.rows(GRADER)} == {"champion", "challenger"}  # the shared log

    async def review(labels: list[str]) -> None:
        for job, label in zip(jobs, labels, strict=False):
            await grader.canary_label(job.scan_id, label)

    asyncio.run(review(["grade0", "grade3", "ungradable"]))
    labelled = plog.rows(GRADER, arm="champion", labelled_only=True)
    assert [(r.pid, r.label) for r in labelled] == [
        (pseudonymise(jobs[0].scan_id, KEY), 0),
        (pseudonymise(jobs[1].scan_id, KEY), 1),
    ]
    assert grader.canary.controller.stats().labels == 2 and grader.canary.active
    # A second look: scan 2 gradable after all; the fourth confirmed label completes the gate,
    # so the canary is promoted on the label, not on the next scan.
    asyncio.run(review(["grade0", "grade3", "grade2", "grade1"]))
    assert grader.canary.controller.stats().labels == 4
    assert not grader.canary.active
    champion = reg.champion(GRADER)
    assert champion is not None and champion.version == "2"
    assert grader.champion.model_version == f"{GRADER}:2"
