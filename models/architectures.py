"""Plain-PyTorch networks: tiny edge nets and a ResNet-like cloud grader.

Every network's `forward` returns logits only (what Grad-CAM and losses expect);
`forward_with_features` also returns the pooled penultimate features that the ONNX export
publishes as `features` for the edge OOD guard.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from models.counter.model import CounterNet

MAX_FEATURES = 64  # the ONNX contract: features [N, D] with D <= 64


def _conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class FeatureNet(nn.Module):
    """A backbone, global average pooling, a linear head; `features` are the pooled channels."""

    body: nn.Module
    drop: nn.Module
    head: nn.Linear

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.flatten(nn.functional.adaptive_avg_pool2d(self.body(x), 1), 1)
        return self.head(self.drop(features)), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]

    def cam_target_layer(self) -> nn.Module:
        """The last convolutional block: spatial maps with the most class-specific meaning."""
        raise NotImplementedError


class EdgeNet(FeatureNet):
    """MobileNet-style depthwise-separable CNN small enough for a Jetson Nano."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 24, 32, 48, 64)) -> None:
        super().__init__()
        if widths[-1] > MAX_FEATURES:
            raise ValueError(f"last width {widths[-1]} exceeds the {MAX_FEATURES} feature limit")
        layers: list[nn.Module] = [_conv_bn(3, widths[0], stride=2)]
        for cin, cout in itertools.pairwise(widths):
            # depthwise 3x3 (stride 2) then pointwise 1x1, then one more separable pair
            layers += [
                _conv_bn(cin, cin, stride=2, groups=cin),
                _conv_bn(cin, cout, k=1),
                _conv_bn(cout, cout, groups=cout),
                _conv_bn(cout, cout, k=1),
            ]
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(widths[-1], num_classes)

    def cam_target_layer(self) -> nn.Module:
        body = self.body
        assert isinstance(body, nn.Sequential)
        return body[-1]


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetGrader(FeatureNet):
    """ResNet-18-shaped (two basic blocks per stage) at a fraction of the width."""

    def __init__(
        self, num_classes: int = 5, widths: tuple[int, ...] = (24, 32, 48, 64), blocks: int = 2
    ) -> None:
        super().__init__()
        if widths[-1] > MAX_FEATURES:
            raise ValueError(f"last width {widths[-1]} exceeds the {MAX_FEATURES} feature limit")
        stem = nn.Sequential(_conv_bn(3, widths[0], stride=2), nn.MaxPool2d(3, 2, 1))
        stages: list[nn.Module] = []
        cin = widths[0]
        for i, cout in enumerate(widths):
            stage = [BasicBlock(cin, cout, 1 if i == 0 else 2)]
            stage += [BasicBlock(cout, cout, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            cin = cout
        self.body = nn.Sequential(stem, *stages)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(widths[-1], num_classes)

    def cam_target_layer(self) -> nn.Module:
        """Last stage (`layer4` in torchvision terms), the usual Grad-CAM target of a ResNet."""
        body = self.body
        assert isinstance(body, nn.Sequential)
        return body[-1]


ARCHITECTURES: dict[str, Callable[..., FeatureNet]] = {
    "edge_net": EdgeNet,
    "resnet_grader": ResNetGrader,
}


def build_architecture(name: str, kwargs: dict[str, Any]) -> FeatureNet:
    """Instantiate a registered architecture by the name a manifest records."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return ARCHITECTURES[name](**fixed)


# Registered architectures that are not fundus feature nets (no features output, no CAM).
OTHER_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"counter_net": CounterNet}


def build_module(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """Any registered architecture by the name a manifest records, the traffic counter too."""
    if name in OTHER_ARCHITECTURES:
        return OTHER_ARCHITECTURES[name](**kwargs)
    if name not in ARCHITECTURES:
        known = sorted([*ARCHITECTURES, *OTHER_ARCHITECTURES])
        raise ValueError(f"unknown architecture {name!r}; known: {known}")
    return build_architecture(name, kwargs)


class WithFeatures(nn.Module):
    """Export wrapper: (logits, features), the two outputs of the ONNX contract."""

    def __init__(self, net: FeatureNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.forward_with_features(x)
