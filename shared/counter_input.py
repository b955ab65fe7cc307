"""The traffic counter's input: one function for the edge counter and the training that feeds it.

It lives here, below both tiers, so edge/ serves exactly what models/ trained on without either
importing the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray


def counter_input(
    frames: Sequence[NDArray[np.uint8]],
    size: int,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Frames (BGR or grey uint8) as the float32 NCHW batch: resized, RGB, 0..1, normalised."""
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
