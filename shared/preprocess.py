"""The one preprocessing definition shared by training, export, edge and cloud.

Its hash goes into every model manifest; a server refuses a model whose recorded hash differs
from the hash this code computes for the same spec, so train/serve skew cannot go unnoticed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ModelRefusedError

# Bump whenever the code below changes what it outputs: every model must then be re-exported.
PREPROCESS_CODE_VERSION = "1"


class PreprocessSpec(BaseModel):
    """Crop to the fundus disc, resize to a square, RGB order, normalise per channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(224, ge=16, le=1024, description="output side in pixels")
    crop_to_fov: bool = Field(True, description="crop to the bright circular field of view")
    fov_threshold: int = Field(20, ge=1, le=254, description="grey level separating FOV from mask")
    colour_order: Literal["RGB"] = Field("RGB", description="channel order fed to the model")
    mean: tuple[float, float, float] = Field((0.5, 0.5, 0.5), description="per-channel mean, 0-1")
    std: tuple[float, float, float] = Field((0.25, 0.25, 0.25), description="per-channel std, 0-1")
    contrast: Literal["global", "local"] = Field(
        "global",
        description="global: the view as photographed; local: each pixel minus the field's "
        "local background (colour cast, flash fall-off and haze removed, lesions kept)",
    )

    def content_hash(self) -> str:
        """Same spec -> same hash on any machine; any change to a field or the code -> new hash."""
        fields = self.model_dump(mode="json")
        if self.contrast == "global":
            # added after models were registered: the default keeps their recorded hashes
            del fields["contrast"]
        canonical = json.dumps(
            {"code_version": PREPROCESS_CODE_VERSION, **fields},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def view(self) -> PreprocessSpec:
        """The part of the spec that decides the cropped, resized view (what datasets cache)."""
        return self.model_copy(update={"contrast": "global"})


def verify_spec_hash(spec: PreprocessSpec, recorded: str, model: str) -> None:
    """Refuse a model exported with different preprocessing than this code would apply."""
    current = spec.content_hash()
    if current != recorded:
        raise ModelRefusedError(
            f"model {model}: preprocessing hash in its manifest is {recorded}, but this code "
            f"computes {current} for the same spec (code version {PREPROCESS_CODE_VERSION}); "
            "re-export the model with this version of edgeward"
        )


def fov_box(image_bgr: np.ndarray, threshold: int) -> tuple[int, int, int, int] | None:
    """Bounding box (x, y, w, h) of the field of view, or None if no bright region exists.

    Measured on every `small_scale`-th pixel (a ~512 px grid). The grid is sampled before the
    channel max, and the percentiles are read from per-row and per-column counts, so a
    multi-megapixel scan is never reduced or scanned whole: the box is
    identical to taking the max over the full image first (tests/unit/test_preprocess.py checks
    it against that definition), at a fraction of the cost.
    """
    h, w = image_bgr.shape[:2]
    small_scale = max(1, max(h, w) // 512)
    small = image_bgr[::small_scale, ::small_scale]
    if small.ndim == 3:
        # Channel by channel: numpy's max over a 3-wide strided axis is ~50x slower.
        channels = [small[:, :, c] for c in range(small.shape[2])]
        small = functools.reduce(np.maximum, channels)
    mask = small > threshold
    count = int(np.count_nonzero(mask))
    if count < 0.01 * mask.size:
        return None
    # Percentiles, not min/max, so a stray bright pixel in the mask does not widen the crop.
    x0, x1 = (_count_percentiles(np.count_nonzero(mask, axis=0)) * small_scale).tolist()
    y0, y1 = (_count_percentiles(np.count_nonzero(mask, axis=1)) * small_scale).tolist()
    return int(x0), int(y0), int(x1 - x0 + small_scale), int(y1 - y0 + small_scale)


_FOV_QUANTILES = np.true_divide([0.5, 99.5], 100)


def _count_percentiles(counts: np.ndarray) -> np.ndarray:
    """np.percentile(..., [0.5, 99.5]).astype(int) of the coordinates `counts` describes.

    `counts[i]` is how often coordinate i occurs. Only the two ranks that the linear method
    interpolates between are looked up (in the cumulative counts), instead of materialising
    and partitioning every coordinate; the arithmetic is numpy's own (`_lerp`), bit for bit.
    """
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])
    virtual = (n - 1) * _FOV_QUANTILES
    previous = np.floor(virtual)
    following = np.minimum(previous + 1, n - 1)
    previous = np.where(virtual >= n - 1, n - 1, previous)
    gamma = virtual - previous
    a = np.searchsorted(cumulative, previous, side="right")
    b = np.searchsorted(cumulative, following, side="right")
    diff = b - a
    value = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return value.astype(int)


def square_crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A square around the box centre, padded with black where it leaves the image."""
    x, y, w, h = box
    side = max(w, h)
    cx, cy = x + w // 2, y + h // 2
    x0, y0 = cx - side // 2, cy - side // 2
    pad = max(0, -x0, -y0, x0 + side - image.shape[1], y0 + side - image.shape[0])
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        x0, y0 = x0 + pad, y0 + pad
    return image[y0 : y0 + side, x0 : x0 + side]


def resize_for_model(image_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The cropped, resized uint8 BGR image the model sees (also the Grad-CAM canvas)."""
    if image_bgr.ndim == 2:
        image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    if spec.crop_to_fov:
        box = fov_box(image_bgr, spec.fov_threshold)
        if box is not None:
            image_bgr = square_crop(image_bgr, box)
    return cv2.resize(image_bgr, (spec.size, spec.size), interpolation=cv2.INTER_AREA)


# Local contrast, after Graham's preprocessing for the Kaggle DR challenge (2015): the view minus
# a Gaussian estimate of its background, amplified and centred on mid-grey. The background sigma
# is a thirtieth of the view (about two vessel widths at the disc), so microaneurysms, exudates
# and vessels stay while camera colour, flash fall-off and vignetting go.
LOCAL_SIGMA_SHARE = 1 / 30
LOCAL_GAIN = 4.0


def local_contrast(resized_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Float32 BGR, 0-255: each pixel minus the field's local background, outside the field grey.

    The background is averaged over field pixels only (normalised convolution), so the field's
    rim does not turn into a bright ring, and the rim itself (a few pixels) reads as outside.
    """
    image = resized_bgr.astype(np.float32)
    field = (resized_bgr.max(axis=2) > spec.fov_threshold).astype(np.float32)
    rim = max(1, spec.size // 64)
    field = cv2.erode(field, np.ones((2 * rim + 1, 2 * rim + 1), np.uint8))
    sigma = spec.size * LOCAL_SIGMA_SHARE
    weight = np.maximum(cv2.GaussianBlur(field, (0, 0), sigma), 1e-3)
    background = cv2.GaussianBlur(image * field[:, :, None], (0, 0), sigma) / weight[:, :, None]
    out = 128.0 + LOCAL_GAIN * (image - background)
    out[field == 0] = 128.0
    return np.clip(out, 0.0, 255.0)


def to_tensor(resized_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """CHW float32 normalised array from a resized uint8 BGR image."""
    view = local_contrast(resized_bgr, spec) if spec.contrast == "local" else resized_bgr
    rgb = view[:, :, ::-1].astype(np.float32) / 255.0
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(((rgb - mean) / std).transpose(2, 0, 1))


def preprocess(image_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Decoded BGR (or grey) image of any size -> model input of shape (3, size, size)."""
    return to_tensor(resize_for_model(image_bgr, spec), spec)


def preprocess_batch(images_bgr: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    return np.stack([preprocess(im, spec) for im in images_bgr])
