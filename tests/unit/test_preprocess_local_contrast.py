"""Local contrast: what a camera adds to the whole field goes, what a lesion adds stays."""

from __future__ import annotations

import numpy as np
import pytest

from shared.preprocess import PreprocessSpec, local_contrast, to_tensor

SIZE = 96
SPEC = PreprocessSpec(size=SIZE, contrast="local")


def field(colour: tuple[int, int, int], *, falloff: float = 0.0) -> np.ndarray:
    """A circular fundus field of one colour, dimmed towards the rim by `falloff` (vignetting)."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    r = np.hypot(yy - SIZE / 2, xx - SIZE / 2) / (SIZE / 2)
    shade = 1.0 - falloff * r**2
    image = np.asarray(colour, np.float32)[None, None, :] * shade[:, :, None]
    image[r > 0.95] = 0
    return image.astype(np.uint8)


@pytest.mark.parametrize("colour", [(40, 90, 160), (70, 140, 200), (30, 60, 110)])
def test_a_colour_cast_is_removed(colour: tuple[int, int, int]) -> None:
    out = local_contrast(field(colour), SPEC)
    assert np.abs(out - 128).max() < 1.0


def test_flash_falloff_is_flattened() -> None:
    image = field((40, 90, 160), falloff=0.5)
    spread_before = float(np.ptp(image[SIZE // 2, 10:-10, 2]))
    out = local_contrast(image, SPEC)
    spread_after = float(np.ptp(out[SIZE // 2, 10:-10, 2]))
    assert spread_before > 40
    assert spread_after < spread_before / 4


def test_a_dark_dot_stays_dark_and_is_amplified() -> None:
    image = field((40, 90, 160))
    image[46:50, 46:50] = (20, 30, 60)  # a haemorrhage-like dot, 100 levels under the red field
    out = local_contrast(image, SPEC)
    assert out[48, 48, 2] < 128 - 100
    assert abs(out[48, 20, 2] - 128) < 15  # a few sigma away: background again


def test_outside_the_field_and_its_rim_is_neutral_grey() -> None:
    out = local_contrast(field((40, 90, 160)), SPEC)
    assert np.all(out[0, 0] == 128)
    # the rim is eroded, so the field's edge does not become a bright ring
    assert np.abs(out - 128).max() < 1.0


def test_mirroring_commutes_with_local_contrast() -> None:
    rng = np.random.default_rng(0)
    image = field((40, 90, 160))
    image = np.clip(image + rng.integers(0, 30, image.shape) * (image > 0), 0, 255).astype(np.uint8)
    assert np.allclose(local_contrast(image[:, ::-1], SPEC), local_contrast(image, SPEC)[:, ::-1])


def test_to_tensor_applies_it_only_when_asked() -> None:
    image = field((40, 90, 160))
    plain = to_tensor(image, PreprocessSpec(size=SIZE))
    local = to_tensor(image, SPEC)
    centre = (slice(None), SIZE // 2, SIZE // 2)
    assert plain[centre][0] == pytest.approx((160 / 255 - 0.5) / 0.25, abs=1e-4)
    assert np.allclose(local[centre], 0.0, atol=0.02)  # mid-grey is the normalised zero


def test_the_default_keeps_the_hash_models_were_registered_with() -> None:
    # recorded in the manifests of models built before `contrast` existed
    assert PreprocessSpec(size=192).content_hash() == "c5a0a8461464cd3c"
    assert SPEC.content_hash() != PreprocessSpec(size=SIZE).content_hash()
    assert SPEC.view() == PreprocessSpec(size=SIZE)
