"""The input-feature summary logged with every prediction: image statistics and an embedding sketch.

`image_statistics` is also what the model factory (`models.reference`) measures its reference
with: drift is judged against that reference, so live scans are measured by the same function,
on the model's view (`shared.preprocess.resize_for_model` output).
"""

from __future__ import annotations

import cv2
import numpy as np

IMAGE_FEATURES = (
    "brightness",
    "contrast",
    "sharpness",
    "red_green_ratio",
    "blue_green_ratio",
    "fov_fraction",
)
SKETCH_DIM = 4
_SKETCH_SEED = 20260101  # fixed: every tier must project onto the same directions


def image_statistics(resized_bgr: np.ndarray) -> dict[str, float]:
    """Per-image brightness, contrast, sharpness and colour balance of the model's view."""
    grey = cv2.cvtColor(resized_bgr, cv2.COLOR_BGR2GRAY)
    inside = grey > 20
    pixels = resized_bgr[inside] if inside.any() else resized_bgr.reshape(-1, 3)
    b, g, r = (pixels[:, i].astype(np.float64).mean() for i in range(3))
    return {
        "brightness": float(grey[inside].mean()) if inside.any() else float(grey.mean()),
        "contrast": float(grey[inside].std()) if inside.any() else float(grey.std()),
        "sharpness": float(cv2.Laplacian(grey, cv2.CV_64F).var()),
        "red_green_ratio": float(r / max(g, 1e-6)),
        "blue_green_ratio": float(b / max(g, 1e-6)),
        "fov_fraction": float(inside.mean()),
    }


def embedding_sketch(features: np.ndarray, dim: int = SKETCH_DIM) -> dict[str, float]:
    """A few fixed random projections of the L2-normalised penultimate features.

    Enough to see the model's internal view of the data move, small enough to log per scan.
    """
    f = np.asarray(features, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(f)) or 1.0
    directions = np.random.default_rng([_SKETCH_SEED, len(f)]).standard_normal((dim, len(f)))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    proj = directions @ (f / norm)
    return {f"sketch_{i}": float(v) for i, v in enumerate(proj)}


def feature_summary(
    resized_bgr: np.ndarray,
    features: np.ndarray | None = None,
    measures: dict[str, float] | None = None,
) -> dict[str, float]:
    """Image statistics, the embedding sketch and any quality measures, as one flat dict."""
    summary = image_statistics(resized_bgr)
    if features is not None:
        summary.update(embedding_sketch(features))
    for key, value in (measures or {}).items():
        summary[f"quality.{key}"] = float(value)
    return summary
