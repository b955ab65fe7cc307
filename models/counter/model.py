"""A small counting CNN: a density map per class (queued, approaching), summed to counts.

Summing a density keeps the count linear in what is seen, which generalises to queues longer
than most training frames show, and stays a plain conv net for every edge runtime.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIZE = 64  # frames (96 px over 60 m) are resized to this; a car stays ~5 px long


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CounterNet(nn.Module):
    """(N, 3, S, S) in 0..1 -> (N, 2) counts: queued, approaching."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.width = w = width
        self.features = nn.Sequential(
            _block(3, w, 2),
            _block(w, w, 1),
            _block(w, 2 * w, 2),
            _block(2 * w, 2 * w, 1),
            _block(2 * w, 4 * w, 2),
            _block(4 * w, 4 * w, 1),
        )
        self.density = nn.Conv2d(4 * w, 2, 1)
        # Start near an empty road: softplus(0) on every cell would begin at ~40 vehicles.
        assert self.density.bias is not None
        nn.init.constant_(self.density.bias, -6.0)
        self.softplus = nn.Softplus()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        density = self.softplus(self.density(self.features(x)))
        return density.sum(dim=(2, 3))
