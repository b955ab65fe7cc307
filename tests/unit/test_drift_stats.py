"""Drift statistics agree with the textbook values and alarm in both directions correctly."""

from __future__ import annotations

import numpy as np
import pytest

from shared.monitoring.drift import DriftThresholds, detect, ks_2samp, psi, wasserstein_1d
from shared.monitoring.fairness import audit, expected_calibration_error


def test_ks_matches_scipy_on_a_known_case() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 200), rng.normal(0.3, 1, 150)
    d, p = ks_2samp(a, b)
    ref = scipy_stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-9)
    assert p == pytest.approx(ref.pvalue, rel=0.05)


def test_wasserstein_of_a_shift_is_the_shift() -> None:
    a = np.linspace(0, 1, 1001)
    assert wasserstein_1d(a, a + 0.5) == pytest.approx(0.5, abs=1e-3)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, 5000)
    assert psi(ref, rng.normal(0, 1, 5000)) < 0.02
    assert psi(ref, rng.normal(1, 1, 5000)) > 0.5


@pytest.mark.parametrize("n", [100, 2000], ids=["small-window-ks", "large-window-psi"])
def test_shift_alarms_and_same_distribution_does_not(n: int) -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(0, 1, 5000)
    assert detect("brightness", ref, rng.normal(0.8, 1, n)).drifted
    assert not detect("brightness", ref, rng.normal(0, 1, n)).drifted


def test_tiny_window_is_not_judged() -> None:
    result = detect("x", np.zeros(100), np.ones(5), DriftThresholds(min_samples=30))
    assert result.method == "insufficient" and not result.drifted
    assert "need 30" in result.detail


def test_calibration_error_of_a_calibrated_predictor_is_small() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 20000)
    y = rng.uniform(0, 1, 20000) < p
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, np.clip(p + 0.3, 0, 1)) > 0.15


def test_audit_finds_the_group_with_lower_sensitivity() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    group = rng.choice(["light", "dark"], n)
    y = rng.uniform(size=n) < 0.4
    p = np.where(y, 0.9, 0.1)
    p[(group == "dark") & y & (rng.uniform(size=n) < 0.3)] = 0.2  # missed cases in one group
    report = audit(y, p, 0.5, {"pigmentation": group.tolist()})
    assert report.by_group["pigmentation"]["light"]["sensitivity"] == 1.0
    assert report.gaps["sensitivity"] == pytest.approx(0.3, abs=0.06)
    assert "dark" in report.worst["sensitivity"]
    assert report.breaches({"sensitivity": 0.1})
    assert not report.breaches({"sensitivity": 0.5})
