"""Scoring a task on the view and its mirror image together (shared/mirror.py), in the build.

The gateway runs the triage net on both and reads the averaged logits; the build fits the
calibration and the conformal thresholds on the same averaged score, and records how far apart the
two readings of a validation scan may lie (`thresholds.mirror_gap`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.architectures import FeatureNet
from models.ood import OOD_PERCENTILE
from models.tasks import FundusTask
from models.train import predict
from shared.mirror import mirror_averaged
from shared.preprocess import PreprocessSpec
from shared.probabilities import log_odds_gap
from shared.registry.calibration import calibrated_probabilities


def mirror_images(images: np.ndarray) -> np.ndarray:
    """Mirror images of cached views (N x S x S x 3): the preprocessing commutes with it."""
    return np.ascontiguousarray(images[:, :, ::-1])


def scored(
    model: torch.nn.Module,
    images: np.ndarray,
    spec: PreprocessSpec,
    view_logits: np.ndarray,
    task: FundusTask,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(the logits the task is scored on, the mirror images' logits or None)."""
    if not task.mirror_averaged:
        return view_logits, None
    assert isinstance(model, FeatureNet)
    mirror_logits, _ = predict(model, mirror_images(images), spec)
    return mirror_averaged(view_logits, mirror_logits), mirror_logits


def mirror_gap(
    view: np.ndarray,
    mirror: np.ndarray,
    temperature: float,
    calibration: dict[str, Any],
    task: FundusTask,
) -> tuple[float, dict[str, Any]]:
    """The gap between a scan's two readings that 199 in 200 validation scans stay within."""
    index = task.labels.index("referable")
    p_view = calibrated_probabilities(view, temperature, calibration)[:, index]
    p_mirror = calibrated_probabilities(mirror, temperature, calibration)[:, index]
    gaps = np.array([log_odds_gap(a, b) for a, b in zip(p_view, p_mirror, strict=True)])
    limit = float(np.percentile(gaps, OOD_PERCENTILE))
    return limit, {
        "criterion": (
            f"the {OOD_PERCENTILE}th percentile of |log-odds(view) - log-odds(mirror)| on the "
            "validation split: a scan read further apart than that is a doubt (shared/mirror.py)"
        ),
        "median": float(np.median(gaps)),
        "p95": float(np.percentile(gaps, 95)),
        "limit": limit,
    }
