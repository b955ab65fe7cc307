"""Data drift against a reference kept with the model at training time.

Small windows use the two-sample Kolmogorov-Smirnov test (a p-value means something with few
samples); large windows use PSI and the Wasserstein distance, which do not turn every tiny shift
of a big sample into a "significant" alarm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class DriftThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    small_window: int = Field(500, ge=10, description="below this many samples use the KS test")
    ks_p_value: float = Field(0.01, gt=0, lt=1, description="KS p-value below which we alarm")
    psi: float = Field(0.2, gt=0, description="PSI above which we alarm (0.1 watch, 0.25 act)")
    wasserstein_sd: float = Field(
        0.25, gt=0, description="Wasserstein distance, in reference std units, above which we alarm"
    )
    min_samples: int = Field(30, ge=5, description="windows smaller than this are not judged")


@dataclass(frozen=True)
class DriftResult:
    feature: str
    n: int
    method: Literal["ks", "psi+wasserstein", "insufficient"]
    statistic: float
    p_value: float | None
    psi: float | None
    wasserstein: float | None
    drifted: bool
    detail: str


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and its asymptotic p-value (Kolmogorov distribution)."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    en = math.sqrt(len(a) * len(b) / (len(a) + len(b)))
    lam = (en + 0.12 + 0.11 / en) * d
    if lam < 1e-3:
        return d, 1.0
    terms = [2 * (-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101)]
    return d, float(min(1.0, max(0.0, sum(terms))))


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's distance between two 1-D samples (area between their CDFs)."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.sort(np.concatenate([a, b]))
    deltas = np.diff(grid)
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * deltas))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index over the reference's quantile bins."""
    reference = np.asarray(reference, float)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        edges = np.array([reference.min() - 1e-9, reference.max() + 1e-9])
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / len(reference)
    cur = np.histogram(np.asarray(current, float), edges)[0] / len(current)
    ref, cur = np.clip(ref, 1e-4, None), np.clip(cur, 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def detect(
    feature: str,
    reference: np.ndarray,
    current: np.ndarray,
    thresholds: DriftThresholds | None = None,
) -> DriftResult:
    """Compare one feature's current window with its reference sample."""
    t = thresholds or DriftThresholds()
    n = len(current)
    if n < t.min_samples:
        return DriftResult(
            feature, n, "insufficient", 0.0, None, None, None, False,
            f"{feature}: {n} samples, need {t.min_samples} to judge",
        )  # fmt: skip
    if n < t.small_window:
        d, p = ks_2samp(reference, current)
        drifted = p < t.ks_p_value
        detail = f"{feature}: KS D={d:.3f}, p={p:.2g} (alarm below {t.ks_p_value})"
        return DriftResult(feature, n, "ks", d, p, None, None, drifted, detail)
    score = psi(reference, current)
    scale = float(np.std(reference)) or 1.0
    w = wasserstein_1d(reference, current) / scale
    drifted = score > t.psi or w > t.wasserstein_sd
    detail = (
        f"{feature}: PSI={score:.3f} (alarm above {t.psi}), "
        f"Wasserstein={w:.3f} sd (alarm above {t.wasserstein_sd})"
    )
    return DriftResult(feature, n, "psi+wasserstein", score, None, score, w, drifted, detail)
