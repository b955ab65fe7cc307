"""Out-of-distribution reference for the edge nets: Mahalanobis on features, energy on logits.

The gateway compares a scan's `features` and `logits` outputs against these numbers; the
definitions here are the ones it must reproduce (see `mahalanobis` and `energy`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

OOD_PERCENTILE = 99.5


def energy(logits: np.ndarray) -> np.ndarray:
    """-logsumexp(raw logits, no temperature); higher means less like the training data."""
    m = logits.max(axis=1)
    return -(m + np.log(np.exp(logits - m[:, None]).sum(axis=1)))


def mahalanobis(features: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """sqrt((f - mean)^T P (f - mean)) per row."""
    d = features - mean
    return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", d, precision, d), 0.0))


def fit_reference(
    train_features: np.ndarray, val_features: np.ndarray, val_logits: np.ndarray
) -> dict[str, Any]:
    """Mean and regularised precision from training features; thresholds from validation."""
    mean = train_features.mean(axis=0)
    cov = np.cov(train_features, rowvar=False)
    dim = cov.shape[0]
    # shrink towards a scaled identity: a tiny or collinear feature set stays invertible
    ridge = 1e-3 * float(np.trace(cov)) / dim + 1e-6
    precision = np.linalg.inv(cov + ridge * np.eye(dim))
    maha_val = mahalanobis(val_features, mean, precision)
    energy_val = energy(val_logits)
    return {
        "feature_mean": mean.astype(float).tolist(),
        "feature_precision": precision.astype(float).tolist(),
        "mahalanobis_threshold": float(np.percentile(maha_val, OOD_PERCENTILE)),
        "energy_threshold": float(np.percentile(energy_val, OOD_PERCENTILE)),
        "percentile": OOD_PERCENTILE,
        "definition": (
            "flag when sqrt((f-mean)^T P (f-mean)) > mahalanobis_threshold on the `features` "
            "output, or -logsumexp(logits) > energy_threshold on the raw `logits` output"
        ),
        "fitted_on": {"train": len(train_features), "validation": len(val_features)},
    }


def separation_check(
    reference: dict[str, Any],
    outputs_by_kind: dict[str, tuple[np.ndarray, np.ndarray]],
    fundus_logits: np.ndarray,
    fundus_features: np.ndarray,
) -> dict[str, Any]:
    """How often each signal flags each non-fundus kind, and the false alarm rate on fundus."""
    mean = np.asarray(reference["feature_mean"])
    precision = np.asarray(reference["feature_precision"])

    def flags(logits: np.ndarray, features: np.ndarray) -> dict[str, float]:
        m = mahalanobis(features, mean, precision) > reference["mahalanobis_threshold"]
        e = energy(logits) > reference["energy_threshold"]
        return {
            "mahalanobis": float(m.mean()),
            "energy": float(e.mean()),
            "either": float((m | e).mean()),
        }

    per_kind = {kind: flags(lg, ft) for kind, (lg, ft) in outputs_by_kind.items()}
    flagged = [v["either"] for v in per_kind.values()]
    return {
        "nonfundus_flagged": per_kind,
        "nonfundus_flagged_min": float(min(flagged)) if flagged else float("nan"),
        "fundus_false_alarm": flags(fundus_logits, fundus_features),
    }
