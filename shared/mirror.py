"""A triage answer read off a photograph and its mirror image together.

Left and right eyes are mirror images and every fundus net is trained with random flips, so the
view and its mirror are two readings of one eye. The triage score is the net's logits averaged
over both (calibration is affine in the logits, so this is the mean calibrated log-odds); the
build fits calibration and the split-conformal thresholds on that same averaged score, so the
bound on false all-clears holds for what the gateway computes. How far the two readings lie apart
is kept as its own doubt: past `MIRROR_GAP` (the twin's 99.5th percentile, recorded in the triage
manifest's thresholds) the net is not reading this photograph the way it read its training data.

On the twin's gradable held-out scans the two readings already lie apart by a median 0.6
log-odds (p95 2.2), so "the two fall in different bands", the rule before this one, fired
whenever a score sat near the clear threshold: on real healthy photographs that was 9 of 44
all-clears lost to a rule, with no referable twin scan cleared by the averaged score either.
"""

from __future__ import annotations

import numpy as np

MIRROR_GAP = "mirror_gap"  # key in the triage manifest's thresholds: log-odds


def mirror_averaged(view_logits: np.ndarray, mirror_logits: np.ndarray) -> np.ndarray:
    """The logits the triage score is read from: the mean over the view and its mirror image."""
    return (np.asarray(view_logits, dtype=np.float64) + np.asarray(mirror_logits)) / 2.0
