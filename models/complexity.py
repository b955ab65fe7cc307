"""Parameter and FLOP counts (convolutions and linear layers, one image) for the report."""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_size: int) -> int:
    """Multiply-adds x 2 of Conv2d and Linear layers for one 3 x size x size input."""
    macs = 0

    def on_conv(module: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal macs
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        macs += out.numel() * (module.in_channels // module.groups) * kh * kw

    def on_linear(module: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal macs
        assert isinstance(module, nn.Linear)
        macs += out.numel() * module.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(on_conv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(on_linear))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return 2 * macs
