"""The training augmentation's colour terms: label-preserving by construction (issue 13)."""

from __future__ import annotations

import numpy as np
import torch

from models.train import WEAK_COLOUR, Augment
from shared.preprocess import PreprocessSpec

SPEC = PreprocessSpec(size=16)
LUMA = torch.tensor((0.299, 0.587, 0.114)).view(1, 3, 1, 1)
# Colour only: no geometry, no exposure, no noise.
COLOUR_ONLY = {"rotate_deg": 0.0, "shift": 0.0, "zoom": 0.0, "brightness": 0.0, "gamma": 0.0}


def _model_view(rgb: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(SPEC.mean).view(1, 3, 1, 1)
    std = torch.tensor(SPEC.std).view(1, 3, 1, 1)
    return (rgb - mean) / std


def _rgb(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(SPEC.mean).view(1, 3, 1, 1)
    std = torch.tensor(SPEC.std).view(1, 3, 1, 1)
    return x * std + mean


def test_desaturation_keeps_brightness_and_only_pulls_colours_toward_grey():
    rng = np.random.default_rng(0)
    rgb = torch.from_numpy(rng.uniform(0.1, 0.9, (8, 3, 16, 16)).astype(np.float32))
    aug = Augment(**COLOUR_ONLY, channel_gain=0.0, noise=0.0, saturation=0.9)
    out = _rgb(aug(_model_view(rgb), SPEC, torch.Generator().manual_seed(1)))
    # a flip may mirror the view; luma and colour spread do not depend on it
    luma_in, luma_out = (rgb * LUMA).sum(1), (out * LUMA).sum(1)
    assert torch.allclose(luma_in.mean((1, 2)), luma_out.mean((1, 2)), atol=1e-4)
    spread_in, spread_out = rgb.std(1).mean((1, 2)), out.std(1).mean((1, 2))
    assert (spread_out <= spread_in + 1e-5).all() and (spread_out < 0.9 * spread_in).any()


def test_a_grey_field_stays_grey_and_black_stays_black_under_the_quality_nets_colour_terms():
    rgb = torch.zeros(4, 3, 16, 16)
    rgb[:, :, 4:12, 4:12] = 0.5
    aug = Augment(**COLOUR_ONLY, channel_gain=0.0, noise=0.0, saturation=WEAK_COLOUR.saturation)
    out = _rgb(aug(_model_view(rgb), SPEC, torch.Generator().manual_seed(2)))
    assert torch.allclose(out, rgb, atol=1e-4)
    # white balance scales channels: black outside the field stays black
    wb = Augment(**COLOUR_ONLY, channel_gain=WEAK_COLOUR.channel_gain, noise=0.0)
    out = _rgb(wb(_model_view(rgb), SPEC, torch.Generator().manual_seed(3)))
    assert torch.allclose(out[:, :, :4], torch.zeros_like(out[:, :, :4]), atol=1e-4)
    ratio = out[:, :, 8, 8] / 0.5
    assert (
        (ratio > 1 - WEAK_COLOUR.channel_gain - 1e-4)
        & (ratio < 1 + WEAK_COLOUR.channel_gain + 1e-4)
    ).all()
