"""The fairness gate on the promotion path: a biased candidate cannot become champion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cloud.flywheel.promotion import FairnessBlockedError, promote
from shared.config.flywheel import FairnessBounds
from shared.monitoring.fairness import audit
from tests.flywheel_support import add_version, registry_copy

GRADER = "fundus-grader"
FAIR = {"sensitivity": 0.05, "specificity": 0.04, "ece": 0.02}


def test_candidate_with_subgroup_gap_over_the_bound_is_not_promoted(
    quick_registry: Path, tmp_path: Path
) -> None:
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    biased = {**FAIR, "sensitivity": 0.31, "sensitivity.pigmentation": 0.31}
    add_version(reg, GRADER, subgroup_gap=biased)
    with pytest.raises(FairnessBlockedError) as err:
        promote(reg, GRADER, "2", FairnessBounds(), reason="retrained")
    assert "held-out sensitivity gap 0.310 exceeds bound 0.150 (across pigmentation)" in str(
        err.value
    )
    candidate = reg.manifest(GRADER, "2")
    assert candidate.stage == "challenger"
    assert candidate.history[-1].reason.startswith("promotion refused: fairness gate")
    champ = reg.champion(GRADER)
    assert champ is not None and champ.version == "1"


def test_fair_candidate_is_promoted(quick_registry: Path, tmp_path: Path) -> None:
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    add_version(reg, GRADER, subgroup_gap=FAIR)
    promoted = promote(reg, GRADER, "2", FairnessBounds(), reason="retrained")
    assert promoted.stage == "champion"
    assert reg.manifest(GRADER, "1").stage == "archived"


def test_live_audit_biased_against_one_camera_blocks_promotion(
    quick_registry: Path, tmp_path: Path
) -> None:
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    add_version(reg, GRADER, subgroup_gap=FAIR)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    camera = np.where(np.arange(400) % 2 == 0, "topcon-nw8", "optomed-aurora")
    p = np.where(y == 1, 0.9, 0.1)
    missed = (camera == "optomed-aurora") & (y == 1) & (rng.random(400) < 0.5)
    p = np.where(missed, 0.2, p)  # the new camera's disease is missed half the time
    live = audit(y, p, 0.5, {"camera": camera.tolist()})
    with pytest.raises(FairnessBlockedError, match=r"live sensitivity gap 0\.[4-6]"):
        promote(reg, GRADER, "2", FairnessBounds(), reason="canary", live=live)
    assert reg.manifest(GRADER, "2").stage == "challenger"
