"""Configuration of the model flywheel: drift checks, fairness bounds, retraining, canary gates."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.config.base import StrictModel
from shared.monitoring.drift import DriftThresholds


class FairnessBounds(StrictModel):
    """Largest allowed gap between subgroups (camera, pigmentation, laterality, site)."""

    sensitivity: float = Field(0.15, ge=0, le=1, description="max sensitivity gap")
    specificity: float = Field(0.15, ge=0, le=1, description="max specificity gap")
    ece: float = Field(0.10, ge=0, le=1, description="max calibration-error gap")

    def as_dict(self) -> dict[str, float]:
        return {"sensitivity": self.sensitivity, "specificity": self.specificity, "ece": self.ece}


class CanaryGates(StrictModel):
    """How a challenger is exposed and what it must show before it replaces the champion."""

    share: float = Field(0.1, gt=0, le=1, description="fraction of cloud scans the canary takes")
    gateways: list[str] = Field(
        default_factory=list, description="edge gateways that receive the challenger"
    )
    shadow: bool = Field(False, description="run and log the challenger but answer with champion")
    prediction_log: str = Field(
        "", description="SQLite prediction log both arms are written to ('' = none)"
    )
    min_requests: int = Field(50, ge=1, le=100_000, description="canary scans before promotion")
    min_labels: int = Field(
        20, ge=0, le=100_000, description="reviewer-confirmed canary scans before promotion"
    )
    judge_after: int = Field(
        20, ge=1, le=100_000, description="canary scans before a breach can be called"
    )
    max_error_rate: float = Field(0.02, ge=0, le=1, description="challenger failures / scans")
    max_latency_ratio: float = Field(
        1.5, gt=0, le=100, description="challenger p95 latency / champion p95 latency"
    )
    max_disagreement: float = Field(
        0.15, ge=0, le=1, description="share of canary scans where the referable call differs"
    )
    max_accuracy_drop: float = Field(
        0.05, ge=0, le=1, description="reviewer-confirmed accuracy below the champion's by more"
    )

    @model_validator(mode="after")
    def _order(self) -> CanaryGates:
        if self.judge_after > self.min_requests:
            raise ValueError(
                f"judge_after ({self.judge_after}) must be <= min_requests ({self.min_requests})"
            )
        return self


class RetrainTriggers(StrictModel):
    on_drift: bool = Field(True, description="retrain when data or concept drift is raised")
    min_new_labels: int = Field(
        200, ge=1, le=1_000_000, description="retrain once this many new reviewer labels exist"
    )
    epochs: int = Field(3, ge=1, le=200, description="fine-tuning epochs of the candidate")


class FlywheelConfig(StrictModel):
    window: int = Field(200, ge=10, le=100_000, description="predictions per drift window")
    drift: DriftThresholds = Field(default_factory=DriftThresholds)
    fairness: FairnessBounds = Field(default_factory=FairnessBounds)
    canary: CanaryGates = Field(default_factory=CanaryGates)
    retrain: RetrainTriggers = Field(default_factory=RetrainTriggers)
