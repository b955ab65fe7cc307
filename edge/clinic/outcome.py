"""What judging one scan produced: the typed seam between the pipeline and the gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.verdicts import Verdict


@dataclass(frozen=True)
class ScanOutcome:
    """What the gateway tells the operator about one scan, and what it may send to the cloud."""

    verdict: Verdict
    reasons: list[str]  # plain words for the operator
    codes: list[str]  # machine codes, e.g. "blur", "modality", "ood_energy"
    confidence: float  # 0..1, the probability behind the verdict (1.0 for rule-based ones)
    timings_ms: dict[str, float]  # decode, validate, quality, ood, triage, total
    model_versions: dict[str, str] = field(default_factory=dict)
    gradable: bool = False  # True -> a copy goes to the cloud grader (edge/clinic/upload.py)
    flags: list[str] = field(default_factory=list)  # accepted but flagged: missing_laterality
    laterality: str | None = None  # raw; the gateway pseudonymises ids before upload
    patient_id: str | None = None
    referable_probability: float | None = None
    measures: dict[str, float] = field(default_factory=dict)  # quality + OOD scores, for audits
    # Per model role ("quality", "triage"): what the prediction log keeps (confidence, score,
    # call, feature summary). Only the models whose answer shaped the verdict are listed.
    monitoring: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A wrong type here would otherwise surface as a silent default far downstream.
        if not isinstance(self.verdict, Verdict):
            raise TypeError(f"ScanOutcome.verdict is {self.verdict!r}, expected a Verdict")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"ScanOutcome.confidence is {self.confidence!r}, expected 0..1")

    def record(self) -> dict[str, Any]:
        """The JSON-safe part the gateway stores and `GET /scans/{id}` shows (no image bytes)."""
        return {
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "codes": list(self.codes),
            "flags": list(self.flags),
            "confidence": float(self.confidence),
            "timings_ms": {k: float(v) for k, v in self.timings_ms.items()},
            "model_versions": dict(self.model_versions),
            "gradable": self.gradable,
            "laterality": self.laterality,
            "patient_id": self.patient_id,
            "referable_probability": self.referable_probability,
            "measures": dict(self.measures),  # the reviewer sees them (edge/clinic/upload.py)
        }


def failed_outcome(reason: str, code: str) -> ScanOutcome:
    """A verdict no model gave: the gateway itself failed, so a person must look."""
    return ScanOutcome(Verdict.REVIEW, [reason], [code], 0.0, {})
