"""The canary in the grader's serving path, with real GraderCores (torch, no Ray)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cloud.flywheel.canary_serving import CanaryServing
from cloud.grader import GradeFailure, GradeJob, load_core
from cloud.grading import GraderCore, Grading
from shared.config.flywheel import CanaryGates, FairnessBounds
from shared.errors import EdgewardError
from shared.monitoring.prediction_log import PredictionLog
from shared.registry import Registry
from sim.flywheel.scenarios import samples
from tests.flywheel_support import add_version, registry_copy

GRADER = "fundus-grader"
FAIR = {"sensitivity": 0.0, "specificity": 0.0, "ece": 0.0}


@pytest.fixture(scope="module")
def jobs() -> list[GradeJob]:
    return [GradeJob(f"scan-{s.index}", s.image_bgr) for s in samples("same", 24, seed=4, size=192)]


class InProcessGrader:
    """What cloud.grader.Grader does per job, without Serve: the model id picks the core."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.cores: dict[str, GraderCore] = {}
        self.answered: list[str] = []

    async def grade(self, job: GradeJob) -> Grading | GradeFailure:
        try:
            if job.model_id not in self.cores:
                self.cores[job.model_id] = load_core(self.registry.root, job.model_id, GRADER)
            core = self.cores[job.model_id]
        except EdgewardError as exc:
            return GradeFailure("model", str(exc))
        return (await asyncio.to_thread(core.grade, [job.image], False))[0]


def _run(serving: CanaryServing, grader: InProcessGrader, jobs: list[GradeJob]) -> list[Grading]:
    async def all_jobs() -> list[Grading]:
        return [await serving.grade(job, grader.grade) for job in jobs]

    return asyncio.run(all_jobs())


def test_corrupt_challenger_is_rolled_back_and_every_scan_still_answered(
    quick_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: list[GradeJob]
) -> None:
    monkeypatch.setenv("EDGEWARD_SITE_KEY", "test-key")
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    add_version(reg, GRADER, subgroup_gap=FAIR)
    (reg.version_dir(GRADER, "2") / "model.pt").write_bytes(b"tampered")
    gates = CanaryGates(share=1.0, judge_after=5, min_requests=10, min_labels=0,
                        prediction_log=str(tmp_path / "pred.db"))  # fmt: skip
    serving = CanaryServing(reg.root, GRADER, gates, FairnessBounds())
    results = _run(serving, InProcessGrader(reg), jobs)
    assert all(isinstance(r, Grading) and r.model_version == f"{GRADER}:1" for r in results)
    assert not serving.active
    manifest = reg.manifest(GRADER, "2")
    assert manifest.stage == "archived"
    assert "error rate 1.000 (5/5)" in manifest.history[-1].reason
    rows = PredictionLog(tmp_path / "pred.db", b"").rows(GRADER, arm="challenger")
    assert len(rows) == 5 and all("fails its checksum" in r.error for r in rows)


def test_healthy_challenger_in_shadow_is_promoted_without_answering(
    quick_registry: Path, tmp_path: Path, jobs: list[GradeJob]
) -> None:
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    add_version(reg, GRADER, subgroup_gap=FAIR)
    gates = CanaryGates(share=1.0, shadow=True, judge_after=5, min_requests=10, min_labels=0,
                        max_latency_ratio=100)  # fmt: skip
    promoted: list[str] = []
    serving = CanaryServing(reg.root, GRADER, gates, FairnessBounds(), on_promote=promoted.append)
    results = _run(serving, InProcessGrader(reg), jobs)
    assert {r.model_version for r in results[:10]} == {f"{GRADER}:1"}  # shadow: champion answers
    assert promoted == [f"{GRADER}:2"]
    champ = reg.champion(GRADER)
    assert champ is not None and champ.version == "2"
    assert champ.extra["canary"]["stats"]["disagreements"] == 0


def test_canary_without_a_challenger_is_refused_with_the_fix(
    quick_registry: Path, tmp_path: Path
) -> None:
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    with pytest.raises(EdgewardError, match="needs a champion and a challenger"):
        CanaryServing(reg.root, GRADER, CanaryGates())


def test_canary_log_without_a_pseudonymisation_key_is_refused_at_start(
    quick_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGEWARD_SITE_KEY", raising=False)
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    add_version(reg, GRADER)
    gates = CanaryGates(prediction_log=str(tmp_path / "p.db"))
    with pytest.raises(EdgewardError, match="EDGEWARD_SITE_KEY is not set"):
        CanaryServing(reg.root, GRADER, gates)
