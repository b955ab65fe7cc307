"""The canary inside a grader replica: route, run both arms, observe, settle, log.

`CanaryController` decides; this class does the I/O around it for `cloud.grader.Grader`: runs
the challenger beside the champion on the canary share, answers with the challenger (or, in
shadow mode, the champion), logs both arms, and applies the controller's decision to the
registry. A failing challenger never costs a scan its answer: the champion's is used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cloud.flywheel.canary import CanaryController, CanaryDecision, Observation
from shared.config.flywheel import CanaryGates, FairnessBounds
from shared.errors import EdgewardError
from shared.monitoring.prediction_log import PredictionLog, PredictionStore
from shared.monitoring.summary import image_statistics
from shared.preprocess import resize_for_model
from shared.registry import Registry

log = logging.getLogger("ray.serve")
GradeFn = Callable[[Any], Awaitable[Any]]  # GradeJob -> Grading | GradeFailure


def referable_call(grading: Any) -> int:
    return int(grading.referable_probability >= grading.thresholds.get("referable", 0.5))


class CanaryServing:
    def __init__(
        self,
        registry_dir: Path,
        name: str,
        gates: CanaryGates,
        fairness: FairnessBounds | None = None,
        on_promote: Callable[[str], None] | None = None,
    ) -> None:
        self.registry = Registry(registry_dir)
        champion = self.registry.champion(name)
        challengers = [m for m in self.registry.versions(name) if m.stage == "challenger"]
        if champion is None or not challengers:
            raise EdgewardError(
                f"canary for {name!r}: needs a champion and a challenger in {registry_dir} "
                f"(champion {champion.model_id if champion else 'none'}, "
                f"challengers {[m.model_id for m in challengers] or 'none'}); "
                "register one with the retraining job or set grader.canary to null"
            )
        self.challenger = challengers[-1]
        self.controller = CanaryController(gates, champion.model_id, self.challenger.model_id)
        self.fairness = fairness or FairnessBounds()
        self.on_promote = on_promote
        self.plog: PredictionStore | None = None
        if gates.prediction_log:
            key = os.environ.get("EDGEWARD_SITE_KEY", "").encode()
            if not key:
                raise EdgewardError(
                    f"canary prediction log {gates.prediction_log}: EDGEWARD_SITE_KEY is not set; "
                    "export the pseudonymisation key (scan ids are never logged raw)"
                )
            self.plog = PredictionLog(gates.prediction_log, key)
        self._settle_lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        return self.controller.decided is None

    async def grade(self, job: Any, grade: GradeFn) -> Any:
        route = self.controller.route(job.scan_id)
        if not route.canary:
            return await grade(job)
        answer_challenger = route.answer == "challenger"

        async def timed(arm_job: Any) -> tuple[Any, float]:
            t0 = time.perf_counter()
            try:
                result = await grade(arm_job)
            except Exception as exc:  # a crashed challenger is evidence, not an outage
                result = exc
            return result, (time.perf_counter() - t0) * 1000.0

        champ_job = replace(job, explain=job.explain and not answer_challenger)
        chall_job = replace(job, model_id=self.controller.challenger, explain=answer_challenger)
        (champ, champ_ms), (chall, chall_ms) = await asyncio.gather(
            timed(champ_job), timed(chall_job)
        )
        chall_ok = hasattr(chall, "referable_probability")
        champ_ok = hasattr(champ, "referable_probability")
        self.controller.observe(
            Observation(
                job.scan_id,
                challenger_error=not chall_ok,
                challenger_latency_ms=chall_ms if chall_ok else None,
                champion_latency_ms=champ_ms if champ_ok else None,
                challenger_call=referable_call(chall) if chall_ok else None,
                champion_call=referable_call(champ) if champ_ok else None,
            )
        )
        self._log(job, champ, champ_ms, "champion")
        self._log(job, chall, chall_ms, "challenger")
        await self._settle()
        if answer_challenger and chall_ok and not self.controller.gates.shadow:
            return chall
        if isinstance(champ, Exception):
            raise champ
        return champ

    def label(self, scan_id: str, grade_label: str) -> None:
        """A reviewer decision (`grade0..grade4`) reaches the accuracy gate and the log."""
        if grade_label.startswith("grade"):
            referable = int(int(grade_label[5:]) >= 2)
            self.controller.label(scan_id, referable)
            if self.plog is not None:
                self.plog.add_label(scan_id, referable)

    async def _settle(self) -> CanaryDecision:
        async with self._settle_lock:
            was_active = self.active
            decision = await asyncio.to_thread(self.controller.settle, self.registry, self.fairness)
            if was_active and decision.action != "continue":
                log.warning(
                    "canary %s: %s (%s)",
                    self.controller.challenger,
                    decision.action,
                    "; ".join(decision.reasons),
                )
                if decision.action == "promote" and self.on_promote is not None:
                    self.on_promote(self.controller.challenger)
            return decision

    def _log(self, job: Any, result: Any, ms: float, arm: str) -> None:
        if self.plog is None:
            return
        ok = hasattr(result, "referable_probability")
        name = self.controller.challenger.split(":")[0]
        version = self.controller.challenger if arm == "challenger" else self.controller.champion
        features: dict[str, float] = {}
        if ok:
            spec = self.challenger.preprocess
            features = image_statistics(resize_for_model(job.image, spec))
        self.plog.record(
            job.scan_id,
            tier="cloud",
            model=name,
            model_version=version,
            confidence=max(result.probabilities) if ok else 0.0,
            score=result.referable_probability if ok else None,
            prediction=referable_call(result) if ok else None,
            arm=arm,
            latency_ms=ms,
            error="" if ok else str(getattr(result, "message", result))[:500],
            features=features,
        )
