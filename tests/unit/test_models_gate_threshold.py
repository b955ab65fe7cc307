"""The quality net's threshold is chosen for what the classical gate lets through: synthetic
scores and classical flags in, a threshold out, checked against a brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest

from models.gate_data import GateSplit
from models.operating_point import MAX_GATE_THRESHOLD, gate_reject_threshold
from models.tasks import QualityTask
from shared.quality_doubt import QUALITY_DOUBT_FRACTION


def _recall_at(p, reject, classical, level):
    """Share of rejects kept from an all-clear, written from the rule (not the code's helper)."""
    kept = [c or q >= level for q, r, c in zip(p, reject, classical, strict=True) if r]
    return sum(kept) / len(kept)


def _recall(p, reject, classical, threshold, fraction):
    return _recall_at(p, reject, classical, fraction * threshold)


def _largest_level(p, reject, classical, target):
    """The highest doubt level with recall >= target, by trying every missed reject's score."""
    levels = sorted({float(q) for q, r, c in zip(p, reject, classical, strict=True) if r and not c})
    return max(lv for lv in levels if _recall_at(p, reject, classical, lv) >= target)


def test_only_rejects_the_classical_gate_misses_set_the_threshold() -> None:
    # 100 rejects: 95 caught by a classical check (with any p), 5 missed at p 0.20 .. 0.60;
    # gradable scans sit at p 0.01 .. 0.05
    p = np.r_[np.full(95, 0.001), [0.20, 0.30, 0.40, 0.50, 0.60], np.linspace(0.01, 0.05, 50)]
    reject = np.r_[np.ones(100, bool), np.zeros(50, bool)]
    classical = np.r_[np.ones(95, bool), np.zeros(55, bool)]
    chosen = gate_reject_threshold(p, reject, classical, doubt_fraction=0.5, target=0.99)
    # one reject may go unprotected: the doubt level may rise to the second-lowest missed (0.30),
    # then drops midway into the gap to the highest gradable below it (0.05): (0.05 + 0.20) / 2
    assert chosen.doubt_level == pytest.approx(0.125)
    assert chosen.threshold == pytest.approx(0.25)
    assert chosen.n_classical_missed == 5 and chosen.allowed_misses == 1
    assert _recall(p, reject, classical, chosen.threshold, 0.5) == 1.0
    # the net alone would need a threshold at the caught rejects' 0.001 to reach 0.99
    assert chosen.threshold > 100 * 0.001


def test_when_the_classical_gate_catches_enough_the_cap_holds() -> None:
    p = np.r_[np.full(200, 0.99), np.full(100, 0.9)]  # the net objects to everything
    reject = np.r_[np.ones(200, bool), np.zeros(100, bool)]
    classical = np.r_[np.ones(199, bool), np.zeros(101, bool)]  # one missed: 0.995 > 0.99
    chosen = gate_reject_threshold(p, reject, classical, doubt_fraction=0.5, target=0.99)
    assert chosen.threshold == MAX_GATE_THRESHOLD and chosen.capped
    lower = gate_reject_threshold(p, reject, classical, doubt_fraction=0.5, target=0.99, cap=0.3)
    assert lower.threshold == 0.3 and lower.doubt_level == pytest.approx(0.15)


def test_a_missed_reject_with_a_high_score_cannot_lift_the_threshold_past_the_cap() -> None:
    p = np.r_[np.full(10, 0.95), np.full(10, 0.01)]
    reject = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    classical = np.zeros(20, bool)  # nothing caught: the net must protect all ten at p 0.95
    chosen = gate_reject_threshold(p, reject, classical, doubt_fraction=0.5, target=0.99)
    assert chosen.threshold == MAX_GATE_THRESHOLD and chosen.capped
    assert _recall(p, reject, classical, chosen.threshold, 0.5) == 1.0


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("fraction", [0.5, 0.3, 1.0])
def test_the_recall_bound_and_the_cap_hold_on_random_scores(seed: int, fraction: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    reject = rng.random(n) < 0.5
    reject[0] = True
    classical = np.where(reject, rng.random(n) < 0.85, rng.random(n) < 0.3)
    classical[0] = False  # at least one reject the net must protect
    p = np.clip(np.where(reject, rng.beta(2, 3, n), rng.beta(1, 8, n)), 0, 1)
    target = float(rng.choice([0.95, 0.99, 1.0]))
    chosen = gate_reject_threshold(p, reject, classical, doubt_fraction=fraction, target=target)
    assert 0 < chosen.threshold <= MAX_GATE_THRESHOLD
    assert chosen.doubt_level == pytest.approx(fraction * chosen.threshold)
    assert _recall(p, reject, classical, chosen.threshold, fraction) >= target
    if not chosen.capped:
        # largest: it clears exactly the unflagged gradable scans the highest valid level clears
        best = _largest_level(p, reject, classical, target)
        free = ~reject & ~classical
        assert set(np.nonzero(free & (p < chosen.doubt_level))[0]) == set(
            np.nonzero(free & (p < best))[0]
        )
        # and no higher level reaches the target
        above = [q for q in p[reject & ~classical] if q > best]
        for q in above:
            assert _recall_at(p, reject, classical, q) < target


def test_bad_inputs_are_refused_with_the_value() -> None:
    p, flags = np.array([0.1, 0.2]), np.array([False, False])
    with pytest.raises(ValueError, match="no rejects"):
        gate_reject_threshold(p, flags, flags, doubt_fraction=0.5, target=0.99)
    with pytest.raises(ValueError, match="2 scores, 3 labels"):
        gate_reject_threshold(p, np.ones(3, bool), flags, doubt_fraction=0.5, target=0.99)
    with pytest.raises(ValueError, match="doubt_fraction 0"):
        gate_reject_threshold(p, ~flags, flags, doubt_fraction=0.0, target=0.99)
    with pytest.raises(ValueError, match=r"cap 1\.5"):
        gate_reject_threshold(p, ~flags, flags, doubt_fraction=0.5, target=0.99, cap=1.5)


def _gate_split(p_quality: list[int], rejects: list[bool], warns: list[bool]) -> GateSplit:
    n = len(p_quality)
    return GateSplit(
        np.zeros((n, 4, 4, 3), np.uint8),
        np.array(p_quality),
        np.array(rejects),
        np.array(warns),
    )


def test_the_quality_task_reports_the_system_recall_beside_the_classical_and_the_nets() -> None:
    # four rejects: one classical reject, one warning, two missed (p 0.40 and 0.02);
    # two gradable scans: p 0.05 (passes) and 0.30 (doubted)
    gate = _gate_split(
        [2, 2, 2, 2, 0, 1],
        [True, False, False, False, False, False],
        [False, True, False, False, False, False],
    )
    p = np.array([0.9, 0.9, 0.40, 0.02, 0.05, 0.30])
    metrics = QualityTask().gate_metrics(p, gate, {"reject": 0.5})
    # doubt from QUALITY_DOUBT_FRACTION x 0.5 = 0.25: protects the 0.40 reject, not the 0.02
    assert QUALITY_DOUBT_FRACTION == 0.5
    assert metrics["gate_reject_recall"] == 0.75
    assert metrics["classical_reject_recall"] == 0.5
    assert metrics["classical_retake_recall"] == 0.25
    assert metrics["gate_net_reject_recall"] == 0.5  # p >= 0.5: the first two only
    assert metrics["gate_gradable_passed"] == 0.5
    th, record = QualityTask().choose_on_gate(p, gate, {"reject": 0.04})
    assert record["doubt_fraction"] == QUALITY_DOUBT_FRACTION
    assert record["net_alone_threshold"] == 0.04
    assert th["reject"] <= MAX_GATE_THRESHOLD
    assert record["calibrate"]["gate_reject_recall"] >= 0.99
