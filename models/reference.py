"""Reference statistics for drift monitoring: image statistics and model confidence on validation.

Image statistics are computed on the model's view (`shared.preprocess.resize_for_model`
output, uint8 BGR) by `shared.monitoring.summary.image_statistics`, the same function monitors
run on live scans with no torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.monitoring.summary import image_statistics

QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
BINS = 20


def describe(values: np.ndarray) -> dict[str, Any]:
    """Quantiles and a fixed-edge histogram: enough for PSI or KS-style drift tests."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1e-6
    counts, edges = np.histogram(values, bins=BINS, range=(lo, hi))
    return {
        "n": len(values),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "quantiles": {f"{q:g}": float(np.quantile(values, q)) for q in QUANTILES},
        "histogram": {"edges": edges.tolist(), "counts": counts.astype(int).tolist()},
    }


def build_reference(
    resized_images: np.ndarray, confidence: np.ndarray, scores: dict[str, np.ndarray]
) -> dict[str, Any]:
    """`manifest.extra["reference"]`: image statistics, calibrated confidence and scores."""
    stats = [image_statistics(im) for im in resized_images]
    image = {key: describe(np.array([s[key] for s in stats])) for key in stats[0]}
    return {
        "split": "validation",
        "image": image,
        "confidence": describe(confidence),
        "scores": {k: describe(v) for k, v in scores.items()},
    }
