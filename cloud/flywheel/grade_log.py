"""Every cloud grade into the prediction log, and reviewer decisions joined to it as labels.

The grader writes one row per grade it answers outside the canary (the canary logs both of its
arms itself, to the same log when it has none of its own); the ingress passes each reviewer
decision back through the grader handle, which joins it here and feeds the canary's gate.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from cloud.flywheel.grade_log_db import DatabasePredictionLog
from cloud.store import DATABASE_URL_ENV
from shared.monitoring.prediction_log import PredictionLog, PredictionStore
from shared.monitoring.summary import image_statistics
from shared.preprocess import PreprocessSpec, resize_for_model

log = logging.getLogger("ray.serve")
KEY_ENV = "EDGEWARD_SITE_KEY"


def open_grade_log(path: Path | str) -> PredictionStore | None:
    """The cloud's prediction log, or None (with a warning that says why) when it cannot be kept.

    In the cloud's database when `EDGEWARD_DATABASE_URL` names one (every replica, on any node,
    writes to the same log), else the SQLite file at `path`. Scan ids are only stored
    keyed-hashed; without the key the grader still grades, unlogged.
    """
    key = os.environ.get(KEY_ENV, "").encode()
    if not key:
        log.warning(
            "prediction log %s is off: %s is not set; export the pseudonymisation key to log "
            "every grade for drift checks",
            path,
            KEY_ENV,
        )
        return None
    url = os.environ.get(DATABASE_URL_ENV, "")
    if url:
        return DatabasePredictionLog(url, key)
    return PredictionLog(path, key)


def referable_label(label: str) -> int | None:
    """A reviewer's label as the log keeps it: 1 for grade2..grade4, 0 below, None if ungradable."""
    if label.startswith("grade") and label[5:].isdigit():
        return int(int(label[5:]) >= 2)
    return None


def record_grade(
    plog: PredictionStore,
    scan_id: str,
    image: np.ndarray,
    result: Any,
    *,
    model_version: str,
    spec: PreprocessSpec,
    latency_ms: float | None = None,
    arm: str = "champion",
) -> bool:
    """One grade (a `Grading`) or refusal (a `GradeFailure`) as a row; False if already logged."""
    ok = hasattr(result, "referable_probability")
    version = result.model_version if ok else model_version
    threshold = result.thresholds.get("referable", 0.5) if ok else 0.5
    return plog.record(
        scan_id,
        tier="cloud",
        model=version.split(":")[0],
        model_version=version,
        confidence=float(max(result.probabilities)) if ok else 0.0,
        score=float(result.referable_probability) if ok else None,
        prediction=int(result.referable_probability >= threshold) if ok else None,
        arm=arm,
        latency_ms=latency_ms,
        error="" if ok else str(getattr(result, "message", result))[:500],
        # On the model's view, like the reference kept with the model at training time.
        features=image_statistics(resize_for_model(image, spec)) if ok else {},
    )
