"""The gate calibration set: found through the `edgeward.datasets` entry point, rendered once,
judged by the classical gate at full size, and re-rendered when the gate's code changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.clinic.quality import assess
from models.datasets import find_renderer, view_name
from models.gate_data import KIND, GateRecipe, gate_dataset, gate_recipe, gate_splits
from models.plan import plan
from shared.preprocess import PreprocessSpec
from sim.datasets import code
from sim.datasets.fundus import photographed
from sim.datasets.gate import GateRenderer

SPEC = PreprocessSpec(size=64)


def test_the_gate_set_renders_once_with_the_classical_verdict_per_scan(tmp_path: Path) -> None:
    recipe = GateRecipe(3, 3, render_size=768, seed=5)
    first = gate_dataset(recipe, SPEC, tmp_path, workers=1)
    again = gate_dataset(recipe, SPEC, tmp_path, workers=1)
    assert first.rendered_now and not again.rendered_now
    assert again.directory == first.directory and first.directory.name.startswith(f"{KIND}-")
    assert first.array(view_name(SPEC)).shape == (6, 64, 64, 3)
    parts = gate_splits(again, recipe, SPEC)
    assert [len(parts[s]) for s in ("calibrate", "test")] == [3, 3]
    # scan 4 of the set is the test split's second: what the gate says about it, recomputed
    image, labels, _ = photographed(
        5,
        recipe.first_index + 4,
        render_size=768,
        defect_rate=recipe.defect_rate,
        family_rate=0.0,
        train=False,
    )
    assert image.shape[:2] == (768, 768)
    report = assess(image)
    test = parts["test"]
    assert bool(test.classical_reject[1]) == bool(report.rejects)
    assert bool(test.classical_warn[1]) == bool(report.warnings)
    assert test.reject[1] == (labels.quality == "reject")
    codes = json.loads(str(again.array("findings")[4]))
    assert codes == sorted(f"{f.severity}:{f.code}" for f in report.findings)


def test_the_gate_kind_is_registered_for_the_build() -> None:
    assert isinstance(find_renderer(KIND), GateRenderer)


def test_a_change_to_the_classical_gate_renders_a_new_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = GateRenderer().generator()["code"]
    edited = tmp_path / "quality.py"
    real = code._source("edge.clinic.quality")
    edited.write_text(real.read_text() + "\n# a moved bound\n")
    source = code._source
    monkeypatch.setattr(
        code, "_source", lambda m: edited if m == "edge.clinic.quality" else source(m)
    )
    assert GateRenderer().generator()["code"] != before


@pytest.mark.parametrize("quick", [True, False])
def test_the_builds_gate_set_shares_no_scan_with_its_training_data(quick: bool) -> None:
    data = plan(quick, 3).data
    gate = gate_recipe(quick, 3, data.family_rate)
    assert gate.seed == data.seed and gate.render_size >= 768
    assert data.n_train + data.n_val + data.n_test <= gate.first_index
