"""Canary rollout of a challenger with automatic rollback: a pure controller, no I/O.

The controller routes a stable share of scans (hash of the scan id) to the challenger, collects
live observations of both arms, and decides: keep going, promote (every gate passed on enough
traffic) or roll back (any gate breached). `settle` applies a decision to the registry and
records why in the manifest history; promotion goes through the fairness gate.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from cloud.flywheel.promotion import FairnessBlockedError, promote
from shared.config.flywheel import CanaryGates, FairnessBounds
from shared.monitoring.fairness import FairnessReport
from shared.registry import Manifest, Registry

Arm = Literal["champion", "challenger"]
Action = Literal["continue", "promote", "rollback"]


@dataclass(frozen=True)
class Route:
    """Who answers a scan, and whether the other arm runs beside it for comparison."""

    answer: Arm
    also_run: Arm | None

    @property
    def canary(self) -> bool:
        return self.also_run is not None or self.answer == "challenger"


@dataclass(frozen=True)
class Observation:
    """One scan on the canary path: both arms' referable calls, the challenger's health."""

    scan_id: str
    challenger_error: bool = False
    challenger_latency_ms: float | None = None
    champion_latency_ms: float | None = None
    challenger_call: int | None = None
    champion_call: int | None = None


@dataclass
class CanaryStats:
    requests: int = 0
    errors: int = 0
    disagreements: int = 0
    compared: int = 0
    labels: int = 0
    challenger_correct: int = 0
    champion_correct: int = 0
    challenger_p95_ms: float | None = None
    champion_p95_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def disagreement(self) -> float:
        return self.disagreements / self.compared if self.compared else 0.0

    def as_dict(self) -> dict[str, float | None]:
        return {**asdict(self), "error_rate": self.error_rate, "disagreement": self.disagreement}


@dataclass(frozen=True)
class CanaryDecision:
    action: Action
    reasons: list[str]
    stats: CanaryStats = field(default_factory=CanaryStats)


class CanaryController:
    """Routing and gating for one champion/challenger pair."""

    def __init__(self, gates: CanaryGates, champion: str, challenger: str) -> None:
        self.gates = gates
        self.champion = champion
        self.challenger = challenger
        self._obs: dict[str, Observation] = {}
        self._labels: dict[str, int] = {}
        self.decided: CanaryDecision | None = None

    # ---- routing ----
    def in_canary(self, scan_id: str) -> bool:
        """Stable per scan id: a retried scan lands on the same arm."""
        h = hashlib.sha256(f"{self.challenger}/{scan_id}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64 < self.gates.share

    def route(self, scan_id: str) -> Route:
        if self.decided is not None or not self.in_canary(scan_id):
            return Route("champion", None)
        if self.gates.shadow:
            return Route("champion", "challenger")
        # The champion runs beside the challenger so disagreement can be measured.
        return Route("challenger", "champion")

    # ---- evidence ----
    def observe(self, obs: Observation) -> None:
        self._obs[obs.scan_id] = obs  # a replayed scan replaces, never double-counts

    def label(self, scan_id: str, label: int) -> None:
        """A reviewer-confirmed referable label (1/0) for a scan; ignored off the canary path."""
        if scan_id in self._obs:
            self._labels[scan_id] = int(label)

    def stats(self) -> CanaryStats:
        s = CanaryStats(requests=len(self._obs))
        ch_lat, cp_lat = [], []
        for o in self._obs.values():
            s.errors += o.challenger_error
            if o.challenger_latency_ms is not None and not o.challenger_error:
                ch_lat.append(o.challenger_latency_ms)
            if o.champion_latency_ms is not None:
                cp_lat.append(o.champion_latency_ms)
            if o.challenger_call is not None and o.champion_call is not None:
                s.compared += 1
                s.disagreements += o.challenger_call != o.champion_call
            if o.scan_id in self._labels and o.challenger_call is not None:
                truth = self._labels[o.scan_id]
                s.labels += 1
                s.challenger_correct += o.challenger_call == truth
                s.champion_correct += o.champion_call == truth
        s.challenger_p95_ms = float(np.percentile(ch_lat, 95)) if ch_lat else None
        s.champion_p95_ms = float(np.percentile(cp_lat, 95)) if cp_lat else None
        return s

    def breaches(self, s: CanaryStats) -> list[str]:
        g = self.gates
        found = []
        if s.error_rate > g.max_error_rate:
            found.append(
                f"error rate {s.error_rate:.3f} ({s.errors}/{s.requests}) above {g.max_error_rate}"
            )
        if s.challenger_p95_ms and s.champion_p95_ms:
            ratio = s.challenger_p95_ms / s.champion_p95_ms
            if ratio > g.max_latency_ratio:
                found.append(
                    f"p95 latency {s.challenger_p95_ms:.1f} ms is {ratio:.2f}x the champion's "
                    f"{s.champion_p95_ms:.1f} ms (limit {g.max_latency_ratio}x)"
                )
        if s.compared and s.disagreement > g.max_disagreement:
            found.append(
                f"disagrees with the champion on {s.disagreement:.1%} of {s.compared} scans "
                f"(limit {g.max_disagreement:.0%})"
            )
        if s.labels:
            drop = (s.champion_correct - s.challenger_correct) / s.labels
            if drop > g.max_accuracy_drop:
                found.append(
                    f"reviewer-confirmed accuracy {s.challenger_correct / s.labels:.3f} vs "
                    f"champion {s.champion_correct / s.labels:.3f} on {s.labels} labels "
                    f"(drop limit {g.max_accuracy_drop})"
                )
        return found

    def evaluate(self) -> CanaryDecision:
        """Roll back on any breach once `judge_after` scans are in; promote when all gates hold."""
        if self.decided is not None:
            return self.decided
        s = self.stats()
        if s.requests < self.gates.judge_after:
            return CanaryDecision(
                "continue", [f"{s.requests}/{self.gates.judge_after} scans before judging"], s
            )
        breaches = self.breaches(s)
        if breaches:
            return CanaryDecision("rollback", breaches, s)
        waiting = []
        if s.requests < self.gates.min_requests:
            waiting.append(f"{s.requests}/{self.gates.min_requests} canary scans")
        if s.labels < self.gates.min_labels:
            waiting.append(f"{s.labels}/{self.gates.min_labels} reviewer labels")
        if waiting:
            return CanaryDecision("continue", ["waiting for " + " and ".join(waiting)], s)
        return CanaryDecision(
            "promote",
            [
                f"all gates held over {s.requests} scans and {s.labels} labels "
                f"(errors {s.error_rate:.3f}, disagreement {s.disagreement:.3f})"
            ],
            s,
        )

    def settle(
        self,
        registry: Registry,
        fairness: FairnessBounds,
        live: FairnessReport | None = None,
    ) -> CanaryDecision:
        """Apply the current decision to the registry (once); returns what was done."""
        decision = self.evaluate()
        if decision.action == "continue" or self.decided is not None:
            return decision
        name, version = self.challenger.split(":")
        _record(registry, name, version, decision)
        if decision.action == "promote":
            try:
                promote(
                    registry, name, version, fairness,
                    reason="canary passed: " + "; ".join(decision.reasons), live=live,
                )  # fmt: skip
            except FairnessBlockedError as exc:
                decision = CanaryDecision("rollback", [str(exc)], decision.stats)
        if decision.action == "rollback":
            registry.set_stage(
                name,
                version,
                "archived",
                reason=f"canary rolled back to {self.champion}: " + "; ".join(decision.reasons),
            )
        self.decided = decision
        return decision


def _record(registry: Registry, name: str, version: str, decision: CanaryDecision) -> Manifest:
    """Keep the canary's evidence in the challenger's manifest beside the stage change."""
    manifest = registry.manifest(name, version)
    extra = {
        **manifest.extra,
        "canary": {
            "action": decision.action,
            "reasons": decision.reasons,
            "stats": decision.stats.as_dict(),
        },
    }
    updated = manifest.model_copy(update={"extra": extra})
    registry.save(updated)
    return updated
