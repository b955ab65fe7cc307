"""PreprocessSpec: a stable hash that changes with anything that changes the model's input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from shared import preprocess as pp
from shared.errors import ModelRefusedError
from shared.preprocess import PreprocessSpec, preprocess, verify_spec_hash


def test_same_spec_same_hash_in_another_process() -> None:
    code = "from shared.preprocess import PreprocessSpec; print(PreprocessSpec().content_hash())"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other == PreprocessSpec().content_hash()
    assert len(other) == 16


@pytest.mark.parametrize(
    "change",
    [
        {"size": 256},
        {"crop_to_fov": False},
        {"fov_threshold": 21},
        {"mean": (0.5, 0.5, 0.4)},
        {"std": (0.25, 0.25, 0.26)},
    ],
)
def test_any_field_change_gives_a_new_hash(change: dict[str, object]) -> None:
    assert PreprocessSpec(**change).content_hash() != PreprocessSpec().content_hash()


def test_code_version_change_gives_a_new_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    before = PreprocessSpec().content_hash()
    monkeypatch.setattr(pp, "PREPROCESS_CODE_VERSION", "999")
    assert PreprocessSpec().content_hash() != before


def test_mismatched_hash_is_refused_naming_both() -> None:
    spec = PreprocessSpec()
    with pytest.raises(ModelRefusedError) as err:
        verify_spec_hash(spec, "0123456789abcdef", "fundus-triage:3")
    assert "0123456789abcdef" in str(err.value)
    assert spec.content_hash() in str(err.value)
    assert "fundus-triage:3" in str(err.value)


def test_output_shape_dtype_and_crop_to_the_disc() -> None:
    image = np.zeros((600, 800, 3), np.uint8)
    yy, xx = np.mgrid[:600, :800]
    disc = (yy - 300) ** 2 + (xx - 450) ** 2 < 250**2
    image[disc] = (40, 90, 160)
    out = preprocess(image, PreprocessSpec(size=64))
    assert out.shape == (3, 64, 64)
    assert out.dtype == np.float32
    # Cropped to the disc: the centre and the middle of each edge lie inside the fundus.
    rgb = out.transpose(1, 2, 0) * 0.25 + 0.5
    assert rgb[32, 32, 0] == pytest.approx(160 / 255, abs=0.02)
    assert rgb[32, 2, 0] > 0.5 and rgb[2, 32, 0] > 0.5
    # RGB order: red channel first.
    assert rgb[32, 32, 0] > rgb[32, 32, 2]


def test_blank_image_is_resized_without_crop() -> None:
    out = preprocess(np.zeros((100, 50), np.uint8), PreprocessSpec(size=32))
    assert out.shape == (3, 32, 32)


def reference_fov_box(image_bgr: np.ndarray, threshold: int) -> tuple[int, int, int, int] | None:
    """fov_box as first written: channel max over the whole image, then np.nonzero."""
    grey = image_bgr.max(axis=2) if image_bgr.ndim == 3 else image_bgr
    small_scale = max(1, max(grey.shape) // 512)
    small = grey[::small_scale, ::small_scale]
    ys, xs = np.nonzero(small > threshold)
    if len(xs) < 0.01 * small.size:
        return None
    x0, x1 = np.percentile(xs, [0.5, 99.5]).astype(int) * small_scale
    y0, y1 = np.percentile(ys, [0.5, 99.5]).astype(int) * small_scale
    return int(x0), int(y0), int(x1 - x0 + small_scale), int(y1 - y0 + small_scale)


def test_fast_fov_box_equals_the_reference_on_the_twins_scans() -> None:
    from sim.fundus.generator import generate_sample

    seen = set()
    for i, size in enumerate((333, 512, 1024, 1536, 2048, 2600)):
        image = generate_sample(seed=11, index=i, size=size, defect_rate=0.5).image_bgr
        box = pp.fov_box(image, 20)
        assert box is not None
        assert box == reference_fov_box(image, 20)
        seen.add(box)
    assert len(seen) == 6  # really different scans, not one box six times


def test_fast_fov_box_equals_the_reference_on_the_parity_corpus() -> None:
    from shared.scan_decode import decode
    from tests.scan_corpus import corpus

    for case in corpus():
        image, _ = decode(case.data, case.name, case.content_type)
        for threshold in (1, 20, 128):
            assert pp.fov_box(image, threshold) == reference_fov_box(image, threshold), case.name


@pytest.mark.parametrize("shape", [(700, 1300, 3), (2049, 517, 3), (1024, 1024), (5, 9, 3)])
def test_fast_fov_box_equals_the_reference_on_random_masks(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.005, 0.02, 0.3, 1.0):
        image = np.where(rng.random(shape) < density, 200, 3).astype(np.uint8)
        got, want = pp.fov_box(image, 20), reference_fov_box(image, 20)
        assert got == want, (shape, density)
    image = np.zeros(shape, np.uint8)
    assert pp.fov_box(image, 20) is None  # nothing bright: no crop


def test_count_percentiles_match_numpy_on_any_counts() -> None:
    """The rank lookup reproduces np.percentile bit for bit, gaps and single values included."""
    rng = np.random.default_rng(7)
    for trial in range(2000):
        size = int(rng.integers(1, 600))
        counts = rng.integers(0, int(rng.choice([2, 5, 300])), size)
        counts[rng.random(size) < rng.random()] = 0  # empty rows or columns, as in a masked field
        if counts.sum() == 0:
            counts[int(rng.integers(size))] = 1
        coords = np.repeat(np.arange(size), counts)
        want = np.percentile(coords, [0.5, 99.5]).astype(int)
        assert pp._count_percentiles(counts).tolist() == want.tolist(), trial
