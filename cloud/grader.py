"""The grader in each cloud replica: @serve.batch over a GraderCore, per-site models via
@serve.multiplexed.

It lives in the ingress's replica (`cloud/ingress.py`), not in a deployment of its own: the scan
is decoded and graded in one process, so no handle hop copies the pixels between replicas.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from ray import serve

from cloud.flywheel.canary_serving import CanaryServing
from cloud.flywheel.grade_log import open_grade_log, record_grade, referable_label
from cloud.grading import GraderCore, Grading
from cloud.metrics import batch_size_histogram, observe_stages
from cloud.model_loading import load_grader, resolve
from shared.config.flywheel import CanaryGates
from shared.errors import EdgewardError

log = logging.getLogger("ray.serve")
MAX_MODELS_PER_REPLICA = 3


@dataclass
class GradeJob:
    """One scan on its way through the batcher (decoded by the ingress)."""

    scan_id: str
    image: np.ndarray
    request_id: str = ""
    model_id: str = ""  # "" = the serving champion
    explain: bool = True
    enqueued_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class GradeFailure:
    """A job the grader refused (returned, not raised, so one bad model id spoils no batch)."""

    kind: str  # "model" (refused / unknown model) or "internal"
    message: str


def _torch_threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def load_core(
    registry_dir: Path, model_id: str, default_name: str, runtime: str = "auto"
) -> GraderCore:
    """A verified grader; `runtime` as `GraderCore` takes it ("auto": ONNX Runtime or faster)."""
    verified = resolve(registry_dir, model_id, default_name)
    return GraderCore(
        load_grader(verified), verified.manifest, torch_threads=_torch_threads(), runtime=runtime
    )


class Grader:
    """Loads the serving champion at start: a replica that cannot verify a model never goes live.

    Built inside a Serve replica (batching and multiplexing need its context); tests call it
    without Serve by replacing `_grade_batch`.
    """

    def __init__(
        self,
        registry_dir: str,
        default_model: str = "fundus-grader",
        max_batch_size: int = 8,
        batch_wait_timeout_s: float = 0.01,
        explain: bool = True,
        *,
        canary: dict[str, object] | None = None,
        prediction_log: str = "",
        runtime: str = "auto",
    ) -> None:
        self.registry_dir = Path(registry_dir)
        self.default_model = default_model
        self.runtime = runtime
        self.explain = explain
        self.batch_wait_timeout_s = batch_wait_timeout_s
        self._pending = 0
        self.champion = load_core(self.registry_dir, "", default_model, runtime)
        # A challenger in canary (or shadow) takes a share of champion traffic; see cloud/flywheel.
        self.canary = (
            None
            if canary is None
            else CanaryServing(
                self.registry_dir,
                default_model,
                CanaryGates.model_validate(canary),
                on_promote=self._promoted,
            )
        )
        # Every grade is logged; canary-path grades by the canary, to this log if it has none.
        self.plog = open_grade_log(prediction_log) if prediction_log else None
        if self.canary is not None and self.canary.plog is None:
            self.canary.plog = self.plog
        type(self)._grade_batch.set_max_batch_size(  # type: ignore[attr-defined]
            max_batch_size
        )
        type(self)._grade_batch.set_batch_wait_timeout_s(  # type: ignore[attr-defined]
            batch_wait_timeout_s
        )
        log.info(
            "grader serving %s on %s, CAM %s (batch <= %d, wait %.3fs, explain=%s)",
            self.champion.model_version,
            self.champion.runtime,
            self.champion.explainer,
            max_batch_size,
            batch_wait_timeout_s,
            explain,
        )

    def model_version(self) -> str:
        return self.champion.model_version

    def configure(self, max_batch_size: int, batch_wait_timeout_s: float, explain: bool) -> None:
        """Change batching and explanations at run time (benchmarks compare settings this way)."""
        type(self)._grade_batch.set_max_batch_size(  # type: ignore[attr-defined]
            max_batch_size
        )
        self.batch_wait_timeout_s = batch_wait_timeout_s
        self.explain = explain

    @serve.multiplexed(max_num_models_per_replica=MAX_MODELS_PER_REPLICA)
    async def get_model(self, model_id: str) -> GraderCore:
        """A per-site model by registry id; verified like the champion, refused if it fails."""
        return await asyncio.to_thread(
            load_core, self.registry_dir, model_id, self.default_model, self.runtime
        )

    def queue_depth(self) -> int:
        """Scans accepted by this replica and not yet graded."""
        return self._pending

    def _promoted(self, model_id: str) -> None:
        self.champion = load_core(self.registry_dir, "", self.default_model, self.runtime)
        log.warning("canary %s promoted: now serving %s", model_id, self.champion.model_version)

    async def canary_label(self, scan_id: str, label: str) -> None:
        """A reviewer's label for a scan: joined into the prediction log, fed to the canary gate."""
        referable = referable_label(label)
        if self.plog is not None and referable is not None:
            await asyncio.to_thread(self.plog.add_label, scan_id, referable)
        if self.canary is not None:
            self.canary.label(scan_id, label)
            if self.canary.active:  # the label may complete the gate: decide now, not next scan
                await self.canary._settle()

    async def grade(self, job: GradeJob, more_coming: bool = True) -> Grading | GradeFailure:
        """`more_coming`: another scan is on its way to the batcher (being received or decoded
        in this replica). Only then does a batch wait for company: a lone scan at c=1 would
        otherwise wait the whole `batch_wait_timeout_s` for nobody."""
        job.enqueued_at = time.perf_counter()
        # the batcher's queue is the class's (Serve keeps one per decorated function)
        type(self)._grade_batch.set_batch_wait_timeout_s(  # type: ignore[attr-defined]
            self.batch_wait_timeout_s if more_coming else 0.0
        )
        self._pending += 1
        try:
            if self.canary is not None and self.canary.active and not job.model_id:
                result: Grading | GradeFailure = await self.canary.grade(job, self._grade_batch)
            else:
                result = await self._grade_batch(job)
                if self.plog is not None:
                    await asyncio.to_thread(self._log_grade, job, result)
        finally:
            self._pending -= 1
        return result

    def _log_grade(self, job: GradeJob, result: Grading | GradeFailure) -> None:
        try:  # the log is for audits: it never costs a scan its answer
            record_grade(
                self.plog,  # type: ignore[arg-type]
                job.scan_id,
                job.image,
                result,
                model_version=job.model_id or self.champion.model_version,
                # per-site models share the champion's preprocessing in this registry
                spec=self.champion.spec,
                latency_ms=(time.perf_counter() - job.enqueued_at) * 1000.0,
            )
        except Exception:
            log.exception("scan %s: could not write the prediction log", job.scan_id)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _grade_batch(self, jobs: list[GradeJob]) -> list[Grading | GradeFailure]:
        started = time.perf_counter()
        groups: dict[str, list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            groups[job.model_id].append(i)
        out: list[Grading | GradeFailure | None] = [None] * len(jobs)
        for model_id, idx in groups.items():
            try:
                core = self.champion if not model_id else await self.get_model(model_id)
            except EdgewardError as exc:
                for i in idx:
                    out[i] = GradeFailure("model", str(exc))
                continue
            explain = self.explain and any(jobs[i].explain for i in idx)
            try:
                gradings = await asyncio.to_thread(
                    core.grade, [jobs[i].image for i in idx], explain
                )
            except Exception as exc:
                log.exception("grading a batch of %d on %s failed", len(idx), core.model_version)
                for i in idx:
                    out[i] = GradeFailure("internal", f"grader failed: {exc}")
                continue
            batch_size_histogram().observe(len(idx), tags={"model_version": core.model_version})
            for i, grading in zip(idx, gradings, strict=True):
                timings = {"queue": started - jobs[i].enqueued_at, **grading.timings_s}
                observe_stages(timings, core.model_version)
                log.info(
                    "graded scan %s request_id=%s model=%s batch=%d p_ref=%.3f",
                    jobs[i].scan_id,
                    jobs[i].request_id,
                    core.model_version,
                    len(idx),
                    grading.referable_probability,
                )
                out[i] = replace(grading, timings_s=timings)
        return [r if r is not None else GradeFailure("internal", "no result") for r in out]
