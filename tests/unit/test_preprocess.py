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
