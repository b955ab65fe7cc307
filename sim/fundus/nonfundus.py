"""Inputs that are NOT fundus photographs, for the out-of-distribution guards at the gateway."""

from __future__ import annotations

import cv2
import numpy as np

NONFUNDUS_KINDS = ("blank", "noise", "document", "natural_photo", "xray", "oct", "gradient")


def _document(rng: np.random.Generator, size: int) -> np.ndarray:
    page = np.full((size, size, 3), 245, np.uint8)
    scale = size / 512
    y = int(40 * scale)
    words = [
        "Patient",
        "referral",
        "letter",
        "visual",
        "acuity",
        "6/9",
        "HbA1c",
        "clinic",
        "follow-up",
        "signed",
        "date",
        "report",
        "diabetes",
        "review",
    ]
    while y < size - 30 * scale:
        x = int(30 * scale)
        while x < size - 80 * scale:
            w = str(rng.choice(words))
            cv2.putText(
                page,
                w,
                (x, y),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45 * scale,
                (20, 20, 20),
                max(1, int(scale)),
                cv2.LINE_AA,
            )
            x += int((len(w) * 9 + 10) * scale)
        y += int(22 * scale)
    return page


def _natural_photo(rng: np.random.Generator, size: int) -> np.ndarray:
    """Sky, hills, a sun and some trees: colourful, textured, and nothing like a retina."""
    img = np.zeros((size, size, 3), np.float32)
    rows = np.linspace(0, 1, size, dtype=np.float32)[:, None]
    img[:] = np.array([235, 190, 120], np.float32)  # BGR light blue sky, lighter to the horizon
    img *= (0.75 + 0.25 * rows)[..., None]
    horizon = int(size * rng.uniform(0.45, 0.6))
    xs = np.arange(size)
    hill = horizon + (size * 0.06 * np.sin(xs / size * rng.uniform(4, 8) + rng.uniform(0, 6)))
    ground = np.arange(size)[:, None] > hill[None, :]
    img[ground] = np.array([60, 140, 70], np.float32)
    sun = (int(rng.uniform(0.15, 0.85) * size), int(size * 0.18))
    cv2.circle(img, sun, int(size * 0.06), (180, 240, 255), -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(4, 9))):
        x = int(rng.uniform(0, size))
        base = int(hill[min(x, size - 1)])
        h = int(size * rng.uniform(0.1, 0.25))
        cv2.rectangle(img, (x - 3, base - h // 3), (x + 3, base), (30, 60, 90), -1)
        cv2.circle(img, (x, base - h // 2), int(h * 0.35), (40, 110, 40), -1, cv2.LINE_AA)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _xray(rng: np.random.Generator, size: int) -> np.ndarray:
    """A grey chest-radiograph-like picture: dark lungs, bright mediastinum and ribs."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = 0.75 - 0.1 * y
    for cx in (0.32, 0.68):
        lung = np.exp(-(((x - cx) / 0.15) ** 2 + ((y - 0.5) / 0.28) ** 2))
        img -= 0.5 * lung
    img += 0.25 * np.exp(-(((x - 0.5) / 0.07) ** 2)) * (y > 0.2)
    for k in range(8):
        yy = 0.25 + k * 0.07
        img += 0.08 * np.exp(-(((y - yy - 0.08 * (x - 0.5) ** 2 * 4) / 0.012) ** 2))
    img += rng.normal(0, 0.02, img.shape)
    grey = np.clip(img * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _oct(rng: np.random.Generator, size: int) -> np.ndarray:
    """An OCT B-scan-like picture: speckled horizontal retinal layers with a foveal pit."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    surface = 0.35 + 0.06 * np.exp(-(((x - 0.5) / 0.08) ** 2))
    img = np.zeros((size, size), np.float32)
    for depth, bright in ((0.0, 0.9), (0.05, 0.5), (0.1, 0.35), (0.17, 0.45), (0.22, 1.0)):
        img += bright * np.exp(-(((y - surface - depth) / 0.012) ** 2))
    img *= rng.gamma(1.0, 1.0, img.shape).astype(np.float32)  # speckle
    grey = np.clip(img * 200, 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def nonfundus_images(seed: int, size: int = 512) -> dict[str, np.ndarray]:
    """One uint8 BGR size x size image of each kind in NONFUNDUS_KINDS, deterministic per seed."""
    rng = np.random.default_rng([seed, 0x0D])
    grad = np.linspace(0, 255, size, dtype=np.float32)
    gradient = np.stack(
        [
            grad[None, :].repeat(size, 0),
            grad[:, None].repeat(size, 1),
            np.full((size, size), 128, np.float32),
        ],
        axis=2,
    ).astype(np.uint8)
    return {
        "blank": np.zeros((size, size, 3), np.uint8),
        "noise": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        "document": _document(rng, size),
        "natural_photo": _natural_photo(rng, size),
        "xray": _xray(rng, size),
        "oct": _oct(rng, size),
        "gradient": gradient,
    }
