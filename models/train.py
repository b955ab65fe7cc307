"""Training loop and the augmentations that mimic real acquisition variation."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.architectures import FeatureNet
from models.data import tensors
from models.progress import bar as progress_bar
from shared.preprocess import PreprocessSpec


@dataclass(frozen=True)
class Augment:
    """Random geometry and colour, applied on the model's view in 0-1 RGB space.

    Mirrors the variation between real sessions: left/right eyes (flip), head tilt and
    centring (rotation, shift, zoom), camera white balance and flash level (channel gains,
    brightness, gamma), sensor noise. Quality nets use weak exposure changes, because exposure
    itself decides their label; white balance and saturation do not, so they may vary widely.
    """

    rotate_deg: float = 20.0
    shift: float = 0.04
    zoom: float = 0.06
    channel_gain: float = 0.08
    brightness: float = 0.15
    gamma: float = 0.15
    noise: float = 0.01
    saturation: float = 0.0  # up to this share of each pixel replaced by its grey (luma kept)

    def __call__(self, x: torch.Tensor, spec: PreprocessSpec, gen: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
        std = torch.tensor(spec.std).view(1, 3, 1, 1)
        rgb = x * std + mean

        def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(*shape, generator=gen)

        flip = torch.rand(n, generator=gen) < 0.5
        rgb = torch.where(flip.view(n, 1, 1, 1), rgb.flip(3), rgb)
        angle = u(-1, 1, n) * math.radians(self.rotate_deg)
        scale = 1.0 + u(-1, 1, n) * self.zoom
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [
                torch.stack([cos, -sin, u(-1, 1, n) * self.shift], 1),
                torch.stack([sin, cos, u(-1, 1, n) * self.shift], 1),
            ],
            1,
        )
        grid = nn.functional.affine_grid(theta, list(rgb.shape), align_corners=False)
        rgb = nn.functional.grid_sample(rgb, grid, padding_mode="zeros", align_corners=False)
        gain = 1.0 + u(-1, 1, n, 3, 1, 1) * self.channel_gain
        gain = gain * (1.0 + u(-1, 1, n, 1, 1, 1) * self.brightness)
        gamma = torch.exp(u(-1, 1, n, 1, 1, 1) * self.gamma)
        rgb = (rgb.clamp(0, 1) ** gamma) * gain
        if self.saturation > 0:
            luma = (rgb * torch.tensor((0.299, 0.587, 0.114)).view(1, 3, 1, 1)).sum(1, keepdim=True)
            mix = u(0, self.saturation, n, 1, 1, 1)
            rgb = rgb * (1 - mix) + luma * mix
        rgb = rgb + torch.randn(rgb.shape, generator=gen) * self.noise
        return (rgb.clamp(0, 1) - mean) / std


# White balance +-15 % per channel and up to 30 % desaturation: real cameras render the same
# healthy fundus from red to pale yellow-green, and the quality net read the paler ones as defects.
WEAK_COLOUR = Augment(channel_gain=0.15, brightness=0.04, gamma=0.04, noise=0.004, saturation=0.3)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0


def train(
    model: FeatureNet,
    images: np.ndarray,
    labels: np.ndarray,
    spec: PreprocessSpec,
    *,
    config: TrainConfig,
    loss_fn: LossFn,
    augment: Augment | None,
    desc: str,
    sample_weights: np.ndarray | None = None,
) -> FeatureNet:
    """AdamW with a one-cycle schedule; `sample_weights` rebalance classes by resampling."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    steps_per_epoch = max(1, len(images) // config.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.2
    )
    probs = None if sample_weights is None else sample_weights / sample_weights.sum()
    y_all = torch.as_tensor(labels)
    model.train()
    bar = progress_bar(total=config.epochs * steps_per_epoch, desc=desc, unit="batch")
    for epoch in range(config.epochs):
        order = rng.choice(len(images), size=steps_per_epoch * config.batch, p=probs)
        running = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * config.batch : (step + 1) * config.batch]
            x = torch.from_numpy(tensors(images[idx], spec))
            if augment is not None:
                x = augment(x, spec, gen)
            loss = loss_fn(model(x), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{running / (step + 1):.3f}")
    bar.close()
    return model.eval()


def predict(
    model: FeatureNet, images: np.ndarray, spec: PreprocessSpec, batch: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(logits, features) of the model on cached views, in eval mode."""
    model.eval()
    logits, feats = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(tensors(images[i : i + batch], spec))
            lg, ft = model.forward_with_features(x)
            logits.append(lg.numpy())
            feats.append(ft.numpy())
    return np.concatenate(logits), np.concatenate(feats)
