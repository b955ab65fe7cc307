"""Camera health: each kind of broken picture is caught and named; a live one passes."""

from __future__ import annotations

import cv2
import numpy as np

from edge.traffic.camera_health import CameraHealth


def _scene(seed: int) -> np.ndarray:
    """A road seen from above: grey asphalt, lane marks, a few cars, sensor noise."""
    rng = np.random.default_rng(seed)
    img = np.full((96, 96, 3), 90, np.uint8)
    for x in (30, 64):
        img[:, x : x + 2] = 230
    for _ in range(3):
        y, x = int(rng.integers(0, 80)), int(rng.integers(0, 80))
        img[y : y + 14, x : x + 8] = rng.integers(0, 255, 3)
    noise = rng.normal(0, 4, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def test_live_camera_is_healthy() -> None:
    health = CameraHealth()
    verdicts = [health.check(_scene(i)) for i in range(10)]
    assert all(v.healthy for v in verdicts), verdicts


def test_frozen_frame_is_caught_after_a_few_repeats() -> None:
    health = CameraHealth()
    frame = _scene(1)
    verdicts = [health.check(frame) for _ in range(4)]
    assert verdicts[0].healthy
    assert not verdicts[-1].healthy and verdicts[-1].reason.startswith("frozen")


def test_black_frame_is_unhealthy() -> None:
    v = CameraHealth().check(np.zeros((96, 96, 3), np.uint8))
    assert not v.healthy and v.reason.startswith("black")


def test_heavy_blur_is_unhealthy() -> None:
    v = CameraHealth().check(cv2.GaussianBlur(_scene(2), (0, 0), 6).astype(np.uint8))
    assert not v.healthy and v.reason.startswith("blurred")


def test_covered_lens_is_obstructed() -> None:
    frame = _scene(3)
    frame[:, :70] = 40
    v = CameraHealth().check(frame)
    assert not v.healthy and v.reason.startswith("obstructed")


def test_dropped_frames_make_the_camera_lost() -> None:
    health = CameraHealth()
    health.check(_scene(4))
    verdicts = [health.check(None) for _ in range(3)]
    assert verdicts[0].healthy
    assert not verdicts[-1].healthy and "no frame" in verdicts[-1].reason
