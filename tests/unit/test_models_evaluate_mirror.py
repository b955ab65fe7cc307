"""The mirror check of the acceptance test: flipped copies, log-odds moves, agreement."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.evaluate_mirror import mirror_copies, mirror_summary, mirrored_edge_lines
from shared.probabilities import log_odds_gap


@dataclass
class Result:
    edge_verdict: str = ""
    edge_verdict_mirrored: str = ""
    edge_referable_probability: float | None = None
    edge_referable_probability_mirrored: float | None = None
    referable_probability: float | None = None
    referable_probability_mirrored: float | None = None
    quality: dict[str, float] = field(default_factory=dict)


def _decode(path: Path) -> np.ndarray | None:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def test_log_odds_gap_is_zero_for_the_same_answer_and_symmetric():
    assert log_odds_gap(0.3, 0.3) == 0.0
    assert log_odds_gap(0.5, 1 / (1 + math.exp(-1))) == pytest.approx(1.0)
    assert log_odds_gap(0.9, 0.2) == pytest.approx(log_odds_gap(0.2, 0.9))


def test_log_odds_gap_stays_finite_at_a_printed_zero_or_one():
    gap = log_odds_gap(0.0, 1.0)
    assert math.isfinite(gap) and gap > 20


def test_a_broken_answer_gives_no_gap_at_all():
    assert math.isnan(log_odds_gap(float("nan"), 0.5))


def test_agreement_counts_matching_verdicts_and_the_gap_is_a_median():
    results = [
        Result("no_immediate_concern", "no_immediate_concern", 0.5, 0.5, 0.1, 0.1),
        Result("no_immediate_concern", "refer", 0.5, 1 / (1 + math.exp(-2)), 0.1, 0.1),
        Result("review", "review", 0.5, 1 / (1 + math.exp(-4)), 0.1, 0.1),
        Result("refer", "review", 0.5, None, 0.1, 0.1),  # no triage on the mirror: not in the gap
    ]
    s = mirror_summary(results)
    assert s["mirror_n"] == 4
    assert s["mirror_verdict_agreement"] == pytest.approx(0.5)
    assert s["mirror_triage_log_odds_gap_median"] == pytest.approx(2.0)  # median of 0, 2, 4
    assert s["mirror_grader_log_odds_gap_median"] == pytest.approx(0.0)


def test_the_gateways_own_view_to_mirror_move_is_the_triage_gap_where_recorded():
    # an averaged triage score is the same for a photograph and its mirror copy
    results = [
        Result("review", "review", 0.01, 0.01, 0.1, 0.1, {"triage_mirror_log_odds_gap": gap})
        for gap in (0.5, 1.5, 3.0)
    ]
    assert mirror_summary(results)["mirror_triage_log_odds_gap_median"] == pytest.approx(1.5)


def test_no_mirrored_verdicts_means_no_mirror_summary():
    assert mirror_summary([Result("refer"), Result("review")]) == {}


def test_mirror_copies_are_lossless_flips_and_undecodable_files_are_left_out(tmp_path: Path):
    image = np.random.default_rng(3).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    good, bad = tmp_path / "scan.png", tmp_path / "scan.dcm"
    cv2.imwrite(str(good), image)
    bad.write_bytes(b"DICM not an image cv2 reads")
    out = tmp_path / "mirrors"
    out.mkdir()
    copies = mirror_copies([good, bad], out, _decode)
    assert list(copies) == [str(good.resolve())]
    flipped = cv2.imread(str(copies[str(good.resolve())]))
    assert flipped is not None and np.array_equal(flipped, image[:, ::-1])


def test_mirrored_lines_come_back_under_the_original_path(tmp_path: Path):
    original = tmp_path / "eye.png"
    cv2.imwrite(str(original), np.full((16, 16, 3), 90, np.uint8))
    seen: list[Path] = []

    def judge(paths: list[Path]) -> dict[str, dict[str, str]]:
        seen.extend(paths)
        return {str(p.resolve()): {"verdict": "review", "file": str(p)} for p in paths}

    lines = mirrored_edge_lines([original], _decode, judge)
    assert list(lines) == [str(original.resolve())]
    assert lines[str(original.resolve())]["verdict"] == "review"
    assert seen and seen[0] != original and not seen[0].exists()  # a temporary copy, cleaned up
