"""The counter's training frames, read from a dataset that `sim/datasets/counter.py` renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.datasets import DatasetRequest, ensure

KIND = "traffic-counter"
SIZE = 96  # frame side in pixels over the camera's 60 m


@dataclass(frozen=True)
class CounterParams:
    """What to render: this many frames of this size from this seed."""

    n: int
    seed: int
    size: int = SIZE


@dataclass(frozen=True)
class CounterPlan:
    train: CounterParams
    test: CounterParams
    epochs: int


def counter_plan(quick: bool, seed: int) -> CounterPlan:
    n_train, n_test, epochs = (2000, 300, 5) if quick else (12000, 2000, 14)
    return CounterPlan(
        CounterParams(n_train, seed * 1000 + 1), CounterParams(n_test, seed * 1000 + 2), epochs
    )


def request(params: CounterParams) -> DatasetRequest:
    return DatasetRequest(KIND, asdict(params))


@dataclass(frozen=True)
class CounterData:
    images: np.ndarray  # (N, H, W, 3) uint8 BGR
    counts: np.ndarray  # (N, 2) float32: queue, approaching
    conditions: list[str]

    def arrays(self) -> dict[str, np.ndarray]:
        """As the dataset stores it."""
        return {
            "images": self.images,
            "counts": self.counts,
            "conditions": np.array(self.conditions),
        }


def counter_data(params: CounterParams, cache_dir: Path) -> tuple[CounterData, dict[str, Any]]:
    """The frames of `params` (rendered on first use) and the dataset's snapshot record."""
    dataset = ensure(request(params), cache_dir)
    data = CounterData(
        dataset.array("images"),
        dataset.array("counts").astype(np.float32),
        [str(c) for c in dataset.array("conditions")],
    )
    return data, dataset.snapshot
