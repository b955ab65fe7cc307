"""Vehicle counts per approach from camera frames, with the registry's `traffic-counter` model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge.backends.registry import create_backend
from edge.traffic.frames import Frame
from shared.registry import Registry

COUNTS_OUTPUT = "counts"  # (N, 2): queued, approaching


class Counter(Protocol):
    def count(self, frames: Mapping[str, Frame]) -> dict[str, tuple[float, float]]:
        """(queued, approaching) vehicles per approach."""
        ...


def counter_input(
    frames: Sequence[Frame],
    size: int,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Frames as the counter's float32 NCHW batch: resized, RGB, 0..1, normalised.

    Training (models/counter) calls this same function, so edge and factory cannot drift.
    """
    batch = np.empty((len(frames), 3, size, size), np.float32)
    m = np.asarray(mean, np.float32).reshape(3, 1, 1)
    s = np.asarray(std, np.float32).reshape(3, 1, 1)
    for k, frame in enumerate(frames):
        img = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).transpose(2, 0, 1) / np.float32(255.0)
        batch[k] = (rgb - m) / s
    return batch


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
