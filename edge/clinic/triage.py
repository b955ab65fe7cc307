"""Triage: the edge triage net's calibrated referable probability against two thresholds.

The rule itself (refer / review / no_immediate_concern bands) is `edge.clinic.verdict.triage`;
this reads the probability and the thresholds off the model and its manifest. The thresholds
come from the manifest (chosen on validation data by the model factory), never from code, so a
retrained model brings its own operating point.
"""

from __future__ import annotations

from edge.backends import Prediction
from shared.errors import ModelRefusedError
from shared.mirror import MIRROR_GAP, mirror_averaged
from shared.registry import Manifest

REFERABLE = "referable"


class TriagePolicy:
    """The triage model's operating point (`clear`, `refer`, `mirror_gap`) and its readings."""

    def __init__(self, manifest: Manifest) -> None:
        missing = [k for k in ("refer", "clear") if k not in manifest.thresholds]
        if missing or REFERABLE not in manifest.labels:
            raise ModelRefusedError(
                f"model {manifest.model_id} cannot triage: thresholds {sorted(manifest.thresholds)}"
                f" and labels {manifest.labels} need 'refer', 'clear' and a 'referable' label"
            )
        self.refer = float(manifest.thresholds["refer"])
        self.clear = float(manifest.thresholds["clear"])
        if not 0.0 <= self.clear <= self.refer <= 1.0:
            raise ModelRefusedError(
                f"model {manifest.model_id}: thresholds clear ({self.clear}) <= refer "
                f"({self.refer}) must hold, both within 0..1"
            )
        self.index = manifest.labels.index(REFERABLE)
        # A model built before the averaged score (or imported without it) has no recorded gap:
        # it is judged on the view alone, with the stricter band rule for its mirror.
        gap = manifest.thresholds.get(MIRROR_GAP)
        self.mirror_gap: float | None = None if gap is None else float(gap)
        if self.mirror_gap is not None and not self.mirror_gap > 0.0:
            raise ModelRefusedError(
                f"model {manifest.model_id}: threshold {MIRROR_GAP} ({self.mirror_gap}) must be "
                "a positive log-odds distance"
            )
        self._calibrated = manifest.probabilities

    def referable_probability(self, view: Prediction, mirrored: Prediction) -> float:
        """The score the verdict reads: averaged over view and mirror when the model says so."""
        if self.mirror_gap is None:
            return self.probability(view)
        logits = mirror_averaged(view.logits, mirrored.logits)
        return float(self._calibrated(logits[None])[0][self.index])

    def probability(self, prediction: Prediction) -> float:
        """One reading's calibrated referable probability."""
        return float(prediction.probabilities[self.index])
