"""Vehicle counts per approach from camera frames, with the registry's `traffic-counter` model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from edge.backends.registry import create_backend
from edge.traffic.frames import Frame
from shared.counter_input import counter_input
from shared.registry import Registry

COUNTS_OUTPUT = "counts"  # (N, 2): queued, approaching


class Counter(Protocol):
    def count(self, frames: Mapping[str, Frame]) -> dict[str, tuple[float, float]]:
        """(queued, approaching) vehicles per approach."""
        ...


class ModelCounter:
    """Serves the counter on the same edge backends as the clinic models."""

    def __init__(self, registry_dir: Path, name: str = "traffic-counter", backend: str = "auto"):
        model = Registry(registry_dir).load_serving(name)
        self.backend = create_backend(backend, model)
        self.spec = model.manifest.preprocess
        self.size = int(model.manifest.input_shape[-1])

    def count(self, frames: Mapping[str, Frame]) -> dict[str, tuple[float, float]]:
        if not frames:
            return {}
        names = list(frames)
        batch = counter_input([frames[n] for n in names], self.size, self.spec.mean, self.spec.std)
        out = self.backend.run(batch)
        counts = np.clip(out[COUNTS_OUTPUT], 0, None)
        return {n: (float(c[0]), float(c[1])) for n, c in zip(names, counts, strict=True)}
