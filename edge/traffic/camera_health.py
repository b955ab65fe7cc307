"""Is an approach camera's picture usable? Frozen, black, blurred or obstructed -> no, and why."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class CameraVerdict:
    healthy: bool
    reason: str = ""


@dataclass(frozen=True)
class HealthThresholds:
    """Defaults suit an 8-bit camera with ordinary sensor noise; tune per site."""

    frozen_frames: int = 3  # identical frames in a row before we call it frozen
    frozen_diff: float = 0.05  # mean absolute difference (0-255) that counts as identical
    dropped_frames: int = 3  # missing frames in a row before we call the camera lost
    black_mean: float = 10.0  # mean brightness below this is a black frame
    black_std: float = 6.0
    blur_laplacian_var: float = 15.0  # variance of the Laplacian below this is heavy blur
    obstructed_fraction: float = 0.35  # share of flat tiles that means something covers the lens
    flat_tile_std: float = 1.5
    tile: int = 8


def _gray(frame: NDArray[np.uint8]) -> NDArray[np.float32]:
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return np.asarray(gray, dtype=np.float32)


def flat_fraction(gray: NDArray[np.float32], tile: int, flat_std: float) -> float:
    """Share of tile x tile blocks whose brightness barely varies (a lens cover, a sticker)."""
    h, w = (gray.shape[0] // tile) * tile, (gray.shape[1] // tile) * tile
    if h == 0 or w == 0:
        return 0.0
    blocks = gray[:h, :w].reshape(h // tile, tile, w // tile, tile)
    return float((blocks.std(axis=(1, 3)) < flat_std).mean())


class CameraHealth:
    """Per-approach frame checks; feed every frame (or None for a dropped one) to `check`."""

    def __init__(self, thresholds: HealthThresholds | None = None) -> None:
        self.t = thresholds or HealthThresholds()
        self._previous: NDArray[np.float32] | None = None
        self._same = 0
        self._dropped = 0

    def check(self, frame: NDArray[np.uint8] | None) -> CameraVerdict:
        t = self.t
        if frame is None:
            self._dropped += 1
            if self._dropped >= t.dropped_frames:
                return CameraVerdict(False, f"no frame for {self._dropped} intervals")
            return CameraVerdict(True)
        self._dropped = 0
        gray = _gray(frame)
        if self._previous is not None and self._previous.shape == gray.shape:
            diff = float(np.abs(gray - self._previous).mean())
            self._same = self._same + 1 if diff < t.frozen_diff else 0
        self._previous = gray
        if self._same + 1 >= t.frozen_frames:
            return CameraVerdict(False, f"frozen: {self._same + 1} identical frames")
        mean, std = float(gray.mean()), float(gray.std())
        if mean < t.black_mean and std < t.black_std:
            return CameraVerdict(False, f"black: mean brightness {mean:.1f}")
        # Blur first: a blurred picture is featureless everywhere, a covered lens only in part.
        sharpness = float(cv2.Laplacian(gray, cv2.CV_32F).var())
        if sharpness < t.blur_laplacian_var:
            return CameraVerdict(False, f"blurred: Laplacian variance {sharpness:.1f}")
        flat = flat_fraction(gray, t.tile, t.flat_tile_std)
        if flat >= t.obstructed_fraction:
            return CameraVerdict(False, f"obstructed: {flat:.0%} of the view is featureless")
        return CameraVerdict(True)
