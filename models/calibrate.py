"""Temperature scaling: one scalar T fitted on validation logits by negative log-likelihood."""

from __future__ import annotations

import numpy as np

from models.metrics import nll, softmax


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """T minimising validation NLL of softmax(logits / T); coarse grid then a fine one."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = min(grid, key=lambda t: nll(softmax(logits, t), labels))
    fine = best * np.exp(np.linspace(-0.06, 0.06, 61))
    return float(min(fine, key=lambda t: nll(softmax(logits, t), labels)))
