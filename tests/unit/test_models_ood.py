"""The factory's OOD reference, on controlled features: it must still flag what is unfamiliar.

Training on broader data (camera families) widens the reference; these inputs check that the
rule itself keeps firing on features and logits unlike any seen in training, and stays quiet on
fresh draws from the training distribution, whatever a trained net happens to learn.
"""

from __future__ import annotations

import numpy as np

from models.ood import OOD_PERCENTILE, energy, fit_reference, separation_check

DIM = 16


def _logits(rng: np.random.Generator, n: int, margin: float) -> np.ndarray:
    """Logits with one class `margin` above the others (0: no class fits)."""
    lg = rng.normal(0.0, 0.3, (n, 3))
    lg[np.arange(n), rng.integers(0, 3, n)] += margin
    return lg


def test_the_reference_flags_junk_and_stays_quiet_on_the_training_distribution() -> None:
    rng = np.random.default_rng(0)
    scale = np.linspace(0.5, 3.0, DIM)  # anisotropic, as real features are
    train = rng.normal(0.0, 1.0, (3000, DIM)) * scale
    val = rng.normal(0.0, 1.0, (800, DIM)) * scale
    ref = fit_reference(train, val, _logits(rng, 800, 8.0))
    assert ref["percentile"] == OOD_PERCENTILE

    fresh = rng.normal(0.0, 1.0, (2000, DIM)) * scale
    shifted = fresh + 4.0 * scale  # every feature four of its own deviations away
    narrow = rng.normal(0.0, 1.0, (2000, DIM)) * 0.2  # junk along the small-variance axes
    narrow[:, 0] += 10.0 * scale[0]  # quiet everywhere but far out along one axis
    outputs = {
        "shifted": (_logits(rng, 2000, 8.0), shifted),
        "narrow": (_logits(rng, 2000, 8.0), narrow),
        "no_class_fits": (_logits(rng, 2000, 0.0) - 9.0, fresh),  # energy alone must fire
    }
    check = separation_check(ref, outputs, _logits(rng, 2000, 8.0), fresh)
    flagged = check["nonfundus_flagged"]
    assert flagged["shifted"]["mahalanobis"] == 1.0
    assert flagged["narrow"]["mahalanobis"] == 1.0
    assert (
        flagged["no_class_fits"]["energy"] == 1.0 and flagged["no_class_fits"]["mahalanobis"] < 0.02
    )
    assert check["nonfundus_flagged_min"] == 1.0
    # a 99.5th-percentile threshold: about 0.5 % of fresh in-distribution draws, not more than 2 %
    assert check["fundus_false_alarm"]["either"] < 0.02


def test_energy_is_higher_when_no_class_fits() -> None:
    confident = np.array([[10.0, 0.0, 0.0]])
    undecided = np.array([[0.0, 0.0, 0.0]])
    assert energy(undecided)[0] > energy(confident)[0]
    assert np.isclose(energy(undecided)[0], -np.log(3.0))
