"""What each fundus model learns, how its thresholds are chosen and how it is scored.

Operating points (chosen on validation, reported on the held-out split):
- quality: `reject` = the highest p_reject threshold (at most MAX_GATE_THRESHOLD) at which >= 99%
  of the gate calibration set's rejects are protected from an all-clear: a classical check
  rejected or warned, or the net is in doubt (p >= QUALITY_DOUBT_FRACTION x reject). 1 point of
  margin over the 98% target, which the gate set's held-out split must meet. Without a gate set:
  the net alone catches >= 99% of validation rejects.
- triage: a split-conformal review band [clear, refer): a new referable eye falls below `clear`
  ("no immediate concern") with probability <= 3%, a healthy one reaches `refer` with
  probability <= 5%, and the band is never narrower than MIN_BAND_WIDTH.
- grader: `referable` = highest threshold with referable sensitivity >= 95%;
  `review_low` (sensitivity >= 99%) and `review_high` (specificity >= 97%) bound the band in
  which the cloud sends the case to a human.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from models.data import Split
from models.gate_data import GateSplit
from models.metrics import auc, ece, sensitivity, specificity
from models.operating_point import (
    conformal_band,
    gate_reject_threshold,
    protected,
    threshold_for_sensitivity,
)
from shared.probabilities import softmax
from shared.quality_doubt import QUALITY_DOUBT_FRACTION


@dataclass(frozen=True)
class FundusTask:
    """Template: subclasses say which images, which labels, which thresholds, which metrics."""

    name: ClassVar[str]
    model_name: ClassVar[str]
    labels: ClassVar[tuple[str, ...]]
    # Scored on the view and its mirror image averaged (shared/mirror.py), as the gateway does.
    mirror_averaged: ClassVar[bool] = False

    def select(self, split: Split) -> Split:
        """The images this model sees in service (the triage and grader never see rejects)."""
        return split.subset(split.quality != 2)

    def targets(self, split: Split) -> np.ndarray:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, y, label_smoothing=0.02)

    def sample_weights(self, y: np.ndarray) -> np.ndarray:
        """Inverse square-root class frequency: rare classes seen more, without overfitting."""
        counts = np.bincount(y, minlength=len(self.labels)).astype(float)
        return 1.0 / np.sqrt(np.maximum(counts[y], 1.0))

    def choose(self, probs: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
        raise NotImplementedError

    def evaluate(self, probs: np.ndarray, y: np.ndarray, th: dict[str, float]) -> dict[str, float]:
        raise NotImplementedError

    def scores(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        """Per-image scores kept as drift references."""
        raise NotImplementedError


@dataclass(frozen=True)
class QualityTask(FundusTask):
    name: ClassVar[str] = "quality"
    model_name: ClassVar[str] = "fundus-quality"
    labels: ClassVar[tuple[str, ...]] = ("good", "usable", "reject")
    reject_recall_target: float = 0.99

    def select(self, split: Split) -> Split:
        return split

    def targets(self, split: Split) -> np.ndarray:
        return split.quality

    def choose(self, probs: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
        reject = y == 2
        t = threshold_for_sensitivity(probs[:, 2], reject, self.reject_recall_target)
        flagged = probs[:, 2] >= t
        return {"reject": t}, {
            "criterion": f"reject recall >= {self.reject_recall_target} on validation",
            "target_held_out": "reject recall >= 0.98",
            "validation_reject_recall": sensitivity(flagged, reject),
            "validation_gradable_kept": specificity(flagged, reject),
        }

    def evaluate(self, probs: np.ndarray, y: np.ndarray, th: dict[str, float]) -> dict[str, float]:
        reject = y == 2
        flagged = probs[:, 2] >= th["reject"]
        return {
            "reject_recall": sensitivity(flagged, reject),
            "gradable_kept": specificity(flagged, reject),
            "reject_auc": auc(probs[:, 2], reject),
            "accuracy": float((probs.argmax(1) == y).mean()),
            "ece": ece(probs, y),
        }

    def scores(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        return {"p_reject": probs[:, 2]}

    def choose_on_gate(
        self, p_reject: np.ndarray, gate: GateSplit, net_alone: dict[str, float]
    ) -> tuple[dict[str, float], dict[str, Any]]:
        """`reject` chosen for what the classical gate lets through (gate_reject_threshold)."""
        chosen = gate_reject_threshold(
            p_reject,
            gate.reject,
            gate.classical,
            doubt_fraction=QUALITY_DOUBT_FRACTION,
            target=self.reject_recall_target,
        )
        th = {"reject": chosen.threshold}
        return th, {
            **chosen.record(),
            "chosen_on": f"gate calibration set, calibrate split ({len(gate)} scans)",
            "target_held_out": "gate_reject_recall >= 0.98 on the gate set's test split",
            # what the net alone would need (validation split, recall >= target): for comparison
            "net_alone_threshold": net_alone["reject"],
            "calibrate": self.gate_metrics(p_reject, gate, th),
        }

    def gate_metrics(
        self, p_reject: np.ndarray, gate: GateSplit, th: dict[str, float]
    ) -> dict[str, float]:
        """The system's figures on a gate split: what stops a reject from getting an all-clear."""
        reject = gate.reject
        guarded = protected(p_reject, gate.classical, th["reject"], QUALITY_DOUBT_FRACTION)
        return {
            "gate_reject_recall": sensitivity(guarded, reject),
            "classical_reject_recall": sensitivity(gate.classical, reject),  # reject or warning
            "classical_retake_recall": sensitivity(gate.classical_reject, reject),
            "gate_net_reject_recall": sensitivity(p_reject >= th["reject"], reject),
            # gradable scans that neither a check nor the net's doubt keeps from an all-clear
            "gate_gradable_passed": specificity(guarded, reject),
        }


@dataclass(frozen=True)
class TriageTask(FundusTask):
    name: ClassVar[str] = "triage"
    model_name: ClassVar[str] = "fundus-triage"
    labels: ClassVar[tuple[str, ...]] = ("not_referable", "referable")
    mirror_averaged: ClassVar[bool] = True
    # Split-conformal on validation, as the grader: a new referable eye is scored below `clear`
    # (told "no immediate concern") with probability <= alpha; a new healthy eye reaches `refer`
    # with probability <= beta. The band between is never narrower than MIN_BAND_WIDTH: with
    # quantile thresholds alone it had collapsed to one point (clear = refer = 0.81), so nothing
    # the net was unsure of reached a person.
    false_all_clear_alpha: float = 0.03
    unreviewed_referral_beta: float = 0.05

    def targets(self, split: Split) -> np.ndarray:
        return split.referable.astype(np.int64)

    def choose(self, probs: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
        p, pos = probs[:, 1], y == 1
        band = conformal_band(p, pos, self.false_all_clear_alpha, self.unreviewed_referral_beta)
        th = {"refer": band.high, "clear": band.low}
        return th, {
            "criterion": (
                f"clear: P(referable eye scored below clear) <= {self.false_all_clear_alpha}; "
                f"refer: P(non-referable eye at or above refer) <= "
                f"{self.unreviewed_referral_beta}"
            ),
            "review_band": band.record(),
            "validation": self.evaluate(probs, y, th),
        }

    def evaluate(self, probs: np.ndarray, y: np.ndarray, th: dict[str, float]) -> dict[str, float]:
        p, pos = probs[:, 1], y == 1
        refer, cleared = p >= th["refer"], p < th["clear"]
        return {
            "auc": auc(p, pos),
            "sensitivity_not_cleared": sensitivity(~cleared, pos),
            "specificity_cleared": specificity(~cleared, pos),
            "sensitivity_refer": sensitivity(refer, pos),
            "specificity_refer": specificity(refer, pos),
            "review_fraction": float((~refer & ~cleared).mean()),
            "ece": ece(probs, y),
        }

    def scores(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        return {"p_referable": probs[:, 1]}


def referable_probability(probs: np.ndarray) -> np.ndarray:
    """P(grade >= 2): the sum of the grade probabilities at and above moderate NPDR."""
    return probs[:, 2:].sum(axis=1)


@dataclass(frozen=True)
class GraderTask(FundusTask):
    name: ClassVar[str] = "grader"
    model_name: ClassVar[str] = "fundus-grader"
    labels: ClassVar[tuple[str, ...]] = ("grade0", "grade1", "grade2", "grade3", "grade4")
    sensitivity_target: float = 0.95
    false_all_clear_alpha: float = 0.01  # conformal bound on referable eyes scored below the band
    unreviewed_referral_beta: float = 0.03  # and on healthy eyes scored above it

    def targets(self, split: Split) -> np.ndarray:
        return split.grade

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # grade cross-entropy plus a referable term on the summed probability the cloud uses
        probs = torch.softmax(logits, dim=1)
        p_ref = probs[:, 2:].sum(1).clamp(1e-6, 1 - 1e-6)
        ref = (y >= 2).float()
        bce = nn.functional.binary_cross_entropy(p_ref, ref)
        return super().loss(logits, y) + bce

    def choose(self, probs: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
        p, pos = referable_probability(probs), y >= 2
        band = conformal_band(p, pos, self.false_all_clear_alpha, self.unreviewed_referral_beta)
        t = threshold_for_sensitivity(p, pos, self.sensitivity_target)
        t = min(max(t, band.low), band.high)
        th = {"referable": t, "review_low": band.low, "review_high": band.high}
        return th, {
            "criterion": f"referable sensitivity >= {self.sensitivity_target} on validation",
            "review_band": band.record(),
            "validation": self.evaluate(probs, y, th),
        }

    def evaluate(self, probs: np.ndarray, y: np.ndarray, th: dict[str, float]) -> dict[str, float]:
        p, pos = referable_probability(probs), y >= 2
        flagged = p >= th["referable"]
        ref_probs = np.stack([1 - p, p], axis=1)
        return {
            "auc": auc(p, pos),
            "sensitivity": sensitivity(flagged, pos),
            "specificity": specificity(flagged, pos),
            "grade_accuracy": float((probs.argmax(1) == y).mean()),
            "quadratic_kappa": quadratic_kappa(probs.argmax(1), y, len(self.labels)),
            "review_fraction": float(((p >= th["review_low"]) & (p < th["review_high"])).mean()),
            "false_all_clear_rate": sensitivity(p < th["review_low"], pos),
            "ece": ece(probs, y),
            "ece_referable": ece(ref_probs, pos.astype(np.int64)),
        }

    def scores(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        return {"p_referable": referable_probability(probs)}


def quadratic_kappa(pred: np.ndarray, true: np.ndarray, k: int) -> float:
    """Cohen's kappa with quadratic weights, the usual agreement score for ordinal DR grades."""
    observed = np.zeros((k, k))
    np.add.at(observed, (true, pred), 1)
    weights = (np.subtract.outer(np.arange(k), np.arange(k)) ** 2) / (k - 1) ** 2
    expected = np.outer(observed.sum(1), observed.sum(0)) / max(observed.sum(), 1)
    denom = (weights * expected).sum()
    return float(1 - (weights * observed).sum() / denom) if denom else float("nan")


TASKS: dict[str, FundusTask] = {
    t.model_name: t for t in (QualityTask(), TriageTask(), GraderTask())
}


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(logits, temperature)
