"""Training data on disk: rendered once per code and parameters, checked when read, and found
through the `edgeward.datasets` entry points without models/ importing sim/."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import sim.datasets.fundus as fundus_renderer
from models.counter.data import CounterParams, counter_data
from models.data import DataRecipe, fundus_dataset, nonfundus, splits
from models.datasets import DatasetRequest, ensure, find_renderer, view_name
from shared.errors import EdgewardError
from shared.preprocess import PreprocessSpec, resize_for_model
from sim.datasets.fundus import _acquire
from sim.fundus.families import FAMILY_NAMES, HELD_OUT_FAMILY
from sim.fundus.generator import generate_sample

REPO = Path(__file__).resolve().parents[2]


class Ramp:
    """A renderer whose arrays are known in advance: a ramp per view, the count as a label."""

    def __init__(self, code: str = "v1") -> None:
        self.code = code
        self.calls: list[DatasetRequest] = []

    def generator(self) -> dict[str, str]:
        return {"generator": "ramp", "generator_version": "1", "code": self.code}

    def render(self, request: DatasetRequest, *, workers: int) -> dict[str, np.ndarray]:
        self.calls.append(request)
        n = int(request.params["n"])
        out = {"label": np.arange(n)}
        for spec in request.views:
            out[view_name(spec)] = np.full((n, spec.size), spec.size, np.uint8)
        return out


def _ramp(n: int, *sizes: int) -> DatasetRequest:
    return DatasetRequest("ramp", {"n": n}, tuple(PreprocessSpec(size=s) for s in sizes))


def test_a_dataset_is_rendered_once_and_read_back_from_disk(tmp_path: Path) -> None:
    renderer = Ramp()
    first = ensure(_ramp(5, 32), tmp_path, renderer=renderer)
    again = ensure(_ramp(5, 32), tmp_path, renderer=renderer)
    assert first.rendered_now and not again.rendered_now
    assert len(renderer.calls) == 1 and again.directory == first.directory
    assert again.array("label").tolist() == [0, 1, 2, 3, 4]
    manifest = json.loads((first.directory / "manifest.json").read_text())
    assert manifest["params"] == {"n": 5} and manifest["generator"]["code"] == "v1"
    assert len(manifest["files"]["label"]["sha256"]) == 64


def test_changed_generator_code_or_parameters_render_a_new_folder(tmp_path: Path) -> None:
    old = ensure(_ramp(5, 32), tmp_path, renderer=Ramp("v1"))
    new_code = ensure(_ramp(5, 32), tmp_path, renderer=Ramp("v2"))
    new_params = ensure(_ramp(6, 32), tmp_path, renderer=Ramp("v1"))
    assert len({old.directory, new_code.directory, new_params.directory}) == 3
    assert new_code.rendered_now and new_params.rendered_now


def test_a_new_view_is_added_beside_the_ones_already_rendered(tmp_path: Path) -> None:
    renderer = Ramp()
    ensure(_ramp(4, 32), tmp_path, renderer=renderer)
    both = ensure(_ramp(4, 32, 48), tmp_path, renderer=renderer)
    assert [tuple(s.size for s in r.views) for r in renderer.calls] == [(32,), (48,)]
    assert both.array(view_name(PreprocessSpec(size=32))).max() == 32
    assert both.array(view_name(PreprocessSpec(size=48))).shape == (4, 48)
    assert not ensure(_ramp(4, 48), tmp_path, renderer=renderer).rendered_now


def test_a_damaged_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    dataset = ensure(_ramp(5, 32), tmp_path, renderer=Ramp())
    path = dataset.directory / "label.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EdgewardError, match=r"label\.npy is missing or fails its sha256; delete"):
        dataset.array("label")


def test_without_a_renderer_the_build_says_what_to_run(tmp_path: Path) -> None:
    assert find_renderer("ramp") is None  # no plugin registers this kind
    with pytest.raises(EdgewardError) as err:
        ensure(_ramp(5, 32), tmp_path / "empty")
    message = str(err.value)
    assert "no rendered 'ramp' dataset with {'n': 5}" in message
    assert "edgeward.datasets" in message and "edgeward sim datasets --out" in message


def test_without_a_renderer_data_already_on_disk_is_used(tmp_path: Path) -> None:
    rendered = ensure(_ramp(5, 32), tmp_path, renderer=Ramp())
    found = ensure(_ramp(5, 32), tmp_path)
    assert found.directory == rendered.directory and not found.rendered_now
    with pytest.raises(EdgewardError, match="no rendered 'ramp' dataset"):
        ensure(_ramp(5, 64), tmp_path)  # that view was never rendered


def test_the_fundus_renderer_is_registered_and_its_data_matches_the_generator(
    tmp_path: Path,
) -> None:
    renderer = find_renderer("fundus")
    assert renderer is not None and renderer.generator()["generator"] == "sim.fundus"
    recipe = DataRecipe(n_train=3, n_val=2, n_test=2, render_size=96, seed=5, family_rate=0.0)
    spec = PreprocessSpec(size=48)
    dataset = fundus_dataset(recipe, [spec], tmp_path, workers=1)
    parts = splits(dataset, recipe, spec)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [3, 2, 2]
    # scan 3 of the seed (after 3 training scans) is the first validation image
    sample = generate_sample(5, 3, size=96, defect_rate=recipe.defect_rate)
    assert np.array_equal(parts["val"].images[0], resize_for_model(sample.image_bgr, spec))
    assert parts["val"].grade[0] == sample.labels.grade
    assert parts["val"].camera[0] == sample.labels.camera
    ood = nonfundus(dataset)
    assert ood and all(images.shape == (4, 96, 96, 3) for images in ood.values())
    assert dataset.snapshot["seed"] == 5 and len(dataset.snapshot["id"]) == 16


def test_camera_families_change_the_pixels_not_the_labels_and_training_misses_one(
    tmp_path: Path,
) -> None:
    recipe = DataRecipe(n_train=12, n_val=6, n_test=2, render_size=96, seed=2, family_rate=1.0)
    spec = PreprocessSpec(size=48)
    parts = splits(fundus_dataset(recipe, [spec], tmp_path, workers=1), recipe, spec)
    for name, part in parts.items():
        start = recipe.split_range(name).start
        for i in range(len(part)):
            sample = generate_sample(2, start + i, size=96, defect_rate=recipe.defect_rate)
            assert part.grade[i] == sample.labels.grade  # the acquisition never moves a label
            assert part.camera[i] in FAMILY_NAMES  # the family it was photographed by
            assert not np.array_equal(part.images[i], resize_for_model(sample.image_bgr, spec))
    assert HELD_OUT_FAMILY not in set(parts["train"].camera)


def test_the_held_out_family_is_drawn_only_outside_the_training_split() -> None:
    render = generate_sample(0, 0, size=96).image_bgr

    def drawn(train: bool) -> set[str]:
        return {_acquire(0, i, render, "topcon-nw8", train)[1] for i in range(40)}

    assert drawn(train=False) == set(FAMILY_NAMES)  # 40 draws of 5 names (fixed seeds)
    assert drawn(train=True) == set(FAMILY_NAMES) - {HELD_OUT_FAMILY}


def _block_edges(image: np.ndarray) -> float:
    """Mean step across 8-px JPEG block edges over the mean step inside blocks (lit field)."""
    g = image[:, :, 1].astype(float)
    step = np.abs(np.diff(g, axis=1))
    lit = g[:, :-1] > 20
    edge = (np.arange(step.shape[1]) % 8 == 7)[None, :] & lit
    return float(step[edge].mean() / step[~edge & lit].mean())


def test_a_photographed_scan_keeps_its_jpeg_defect_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    """The camera's JPEG comes last: reframing must not smooth a compression defect away."""
    index = next(
        i
        for i in range(200)
        if generate_sample(0, i, size=320).labels.defects.get("jpeg_compression", 0) > 0.85
    )
    frames: list[np.ndarray] = []

    def keep_frame(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
        frames.append(image)  # the photographed frame, before the model's crop and resize
        return resize_for_model(image, spec)

    monkeypatch.setattr(fundus_renderer, "resize_for_model", keep_frame)
    row = fundus_renderer._render_one((0, index, 320, 0.2, 1.0, False, (PreprocessSpec(size=48),)))
    assert row["camera"] in FAMILY_NAMES and row["quality"] == 2  # photographed, still a reject
    assert _block_edges(frames[0]) > 1.5  # the 8-px grid of a heavy JPEG is in the frame
    clean = next(i for i in range(200) if not generate_sample(0, i, size=320).labels.defects)
    fundus_renderer._render_one((0, clean, 320, 0.2, 1.0, False, (PreprocessSpec(size=48),)))
    assert _block_edges(frames[1]) < 1.5  # a clean scan, photographed, has no such grid


def test_counter_frames_come_from_the_registered_renderer_and_are_cached(tmp_path: Path) -> None:
    params = CounterParams(n=9, seed=3)
    data, snap = counter_data(params, tmp_path)
    assert data.images.shape == (9, 96, 96, 3) and data.counts.shape == (9, 2)
    assert (data.counts >= 0).all() and len(data.conditions) == 9
    again, snap_again = counter_data(params, tmp_path)
    assert np.array_equal(again.images, data.images) and snap_again == snap
    assert snap["generator"] == "sim.traffic.camera" and snap["n"] == 9


TIERS = {"shared", "edge", "models", "cloud", "sim", "benchmarks"}


@pytest.mark.parametrize(
    ("tier", "may_import"),
    [("models", {"models", "shared"}), ("edge", {"edge", "shared"}), ("shared", {"shared"})],
)
def test_lower_tiers_import_no_higher_tier(tier: str, may_import: set[str]) -> None:
    """models/ reads datasets from disk instead of importing sim/; edge/ and shared/ stay below."""
    found = []
    for path in sorted((REPO / tier).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            top = [n for n in names if n.split(".")[0] in TIERS - may_import]
            found += [f"{path.relative_to(REPO)} imports {n}" for n in top]
    assert found == []
