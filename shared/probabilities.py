"""Logits to probabilities: the one softmax of every tier (edge serving, calibration, training)."""

from __future__ import annotations

import math

import numpy as np

# Probabilities this close to 0 or 1 are clipped before the log-odds (a printed 0.0 is not -inf).
_LOG_ODDS_EPS = 1e-6


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis in float64, shifted by the max so large logits cannot overflow."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def log_odds_gap(p: float, q: float) -> float:
    """|logit(p) - logit(q)|: how far one answer moved, on the scale calibration works in.

    Used for a scan against its mirror image: at the gateway (a monitored measure) and in
    `models evaluate`. A NaN (a broken runtime) gives NaN, never a small, reassuring gap.
    """
    a, b = (min(max(v, _LOG_ODDS_EPS), 1.0 - _LOG_ODDS_EPS) for v in (p, q))
    return abs(math.log(a / (1.0 - a)) - math.log(b / (1.0 - b)))
