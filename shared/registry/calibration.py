"""Calibrated probabilities from raw logits, as a manifest records them (numpy only).

Every serving path (edge backends, cloud grader, flywheel) turns logits into probabilities
here, so what the factory fitted is exactly what inference applies.

Kinds (`manifest.calibration["kind"]`; an empty record means `temperature`):
- `temperature`: softmax(logits / manifest.temperature).
- `vector_scaling`: softmax(logits * scale + bias), one scale and one bias per class
  (Guo et al. 2017); `manifest.temperature` is then 1.0 and unused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from shared.errors import ModelRefusedError
from shared.probabilities import softmax

KINDS = ("temperature", "vector_scaling")


def calibration_problems(
    calibration: Mapping[str, Any], n_classes: int, model_id: str = "model"
) -> list[str]:
    """Why this calibration record cannot be applied; empty when it can."""
    if not calibration:
        return []
    kind = calibration.get("kind")
    if kind not in KINDS:
        return [
            f"{model_id}: calibration kind {kind!r} is unknown (this edgeward applies "
            f"{', '.join(KINDS)}); upgrade edgeward or rebuild the model with "
            "`edgeward models build`"
        ]
    if kind == "temperature":
        return []
    found = []
    for key in ("scale", "bias"):
        values = calibration.get(key)
        if not isinstance(values, list) or len(values) != n_classes:
            found.append(
                f"{model_id}: vector_scaling needs {key!r} as {n_classes} numbers "
                f"(one per label), the manifest has {values!r}"
            )
        elif not all(isinstance(v, int | float) and np.isfinite(v) for v in values):
            found.append(f"{model_id}: vector_scaling {key!r} has a non-finite value: {values}")
    return found


def calibrated_probabilities(
    logits: np.ndarray,
    temperature: float,
    calibration: Mapping[str, Any],
    model_id: str = "model",
) -> np.ndarray:
    """Probabilities (float64, rows sum to 1) of logits [..., C] under the recorded calibration."""
    z = np.asarray(logits, dtype=np.float64)
    problems = calibration_problems(calibration, z.shape[-1], model_id)
    if problems:
        raise ModelRefusedError("; ".join(problems))
    if calibration.get("kind") == "vector_scaling":
        z = z * np.asarray(calibration["scale"], dtype=np.float64) + np.asarray(
            calibration["bias"], dtype=np.float64
        )
        return softmax(z)
    return softmax(z, temperature)
