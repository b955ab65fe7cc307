"""A retraining job as a real Ray task: champion + reviewed cases -> challenger with comparison."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.flywheel.retrain import ReviewedCase, run_retraining
from cloud.runtime import start_private_ray
from sim.flywheel.scenarios import samples
from tests.flywheel_support import registry_copy

pytestmark = pytest.mark.ray
TRIAGE = "fundus-triage"
QUALITY = "fundus-quality"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_ray() -> Iterator[None]:
    import ray

    ray_dir = start_private_ray(
        num_cpus=1, namespace=f"flywheel-{uuid.uuid4().hex[:8]}", log_to_driver=False
    )
    yield
    ray.shutdown()
    shutil.rmtree(ray_dir, ignore_errors=True)


def test_retraining_registers_a_challenger_compared_on_the_same_held_out_set(
    quick_registry: Path, tmp_path: Path, local_ray: None
) -> None:
    reg = registry_copy(quick_registry, tmp_path / "reg", (TRIAGE,))
    reviewed = [
        ReviewedCase(f"rev-{s.index}", s.image_bgr, s.labels.grade, "clinic-new")
        for s in samples("new-camera-advanced", 20, seed=9, size=192)
    ]
    manifest = run_retraining(
        reg.root, TRIAGE, reviewed, cache_dir=REPO / ".cache" / "datasets", epochs=1,
        reason="drift in red_green_ratio",
    )  # fmt: skip
    assert manifest.stage == "challenger" and manifest.version == "2"
    assert manifest.history[-1].reason.startswith("drift in red_green_ratio; 16 reviewed cases")
    comparison = manifest.extra["comparison"]
    held = comparison["held_out"]
    assert comparison["champion"] == f"{TRIAGE}:1"
    assert set(held["candidate"]) == set(held["champion"]) >= {"auc", "ece"}
    assert comparison["reviewed_holdout"]["n"] == 4
    assert manifest.data_snapshot["reviewed_cases"] == 16
    assert manifest.subgroup_gap  # the fairness gate has something to judge
    reg.load(TRIAGE, "2")  # artifacts and preprocessing verify
    champ = reg.champion(TRIAGE)
    assert champ is not None and champ.version == "1"  # nothing is promoted by retraining


def test_a_retrained_quality_net_keeps_its_threshold_chosen_on_the_gate_set(
    quick_registry: Path, tmp_path: Path
) -> None:
    """Without the gate set a retrained candidate would get the net-alone threshold back."""
    from cloud.flywheel.retrain import retrain_candidate
    from shared.registry import Manifest

    reg = registry_copy(quick_registry, tmp_path / "reg", (QUALITY,))
    reviewed = [
        ReviewedCase(f"rev-{s.index}", s.image_bgr, s.labels.grade, "clinic-new")
        for s in samples("new-camera-advanced", 8, seed=9, size=192)
    ]
    manifest = Manifest.model_validate(
        retrain_candidate(
            reg.root, QUALITY, reviewed, cache_dir=REPO / ".cache" / "datasets", epochs=1
        )
    )
    point = manifest.operating_point
    assert point["chosen_on"].startswith("gate calibration set")
    doubt = manifest.thresholds["reject"] * point["doubt_fraction"]
    assert doubt == pytest.approx(point["doubt_level"])
    assert {"gate_reject_recall", "classical_reject_recall"} <= set(manifest.metrics)
