"""Acquisition defects with a severity, and the one table that turns them into a quality class.

Quality follows the EyeQ grading: `good` (no defect), `usable` (a defect, still gradable),
`reject` (ungradable: retake). Severities are 0..1; what 1.0 does is in QUALITY_RULES.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sim.fundus.anatomy import Geometry, coords


@dataclass(frozen=True)
class DefectRule:
    reject_at: float  # severity from which this defect alone makes the scan unreadable
    effect: str  # what the severity controls (sizes are fractions of the FOV radius R)


# The quality table. A scan is `reject` when any defect reaches its `reject_at`, or when the
# defects together reach COMBINED_REJECT (sum of severity / reject_at); `usable` when it has any
# other defect; `good` when it has none.
QUALITY_RULES: dict[str, DefectRule] = {
    "defocus": DefectRule(0.5, "Gaussian blur, sigma = 0.1 R * s ** 1.5"),
    "motion_blur": DefectRule(0.5, "linear blur, length = 0.45 R * s ** 1.5, random direction"),
    "underexposure": DefectRule(0.55, "brightness x 0.02 ** s ** 1.3 (noise stays: low SNR)"),
    "overexposure": DefectRule(0.5, "brightness x (1 + 5 s ** 1.3), clipped; blacks + 0.25 s"),
    "uneven_illumination": DefectRule(
        0.6,
        "brightness ramp across the FOV: x 0.01 ** s far side, x 0.01 ** (-0.3 s) near side",
    ),
    "off_centre": DefectRule(0.55, "FOV shifted by 1.6 R * s: at 0.55 ~40% of it is cut off"),
    "eyelash_occlusion": DefectRule(0.55, "lid and lashes cover 0.8 * s of the FOV height"),
    "haze_flare": DefectRule(0.6, "veil of weight 1.4 s (max 0.95) and a bright edge flare"),
    "low_resolution": DefectRule(0.75, "detail limited to 0.02 ** s ** 1.2 of the image side"),
    "jpeg_compression": DefectRule(0.85, "JPEG quality = 90 * (1 - s) ** 2 (min 1)"),
}
DEFECTS: tuple[str, ...] = tuple(QUALITY_RULES)
COMBINED_REJECT = 1.5
# The sampler keeps usable severities below this fraction of `reject_at`, so the twin's classes
# have a margin (real graders disagree near the boundary; the twin's labels should not).
USABLE_MAX_FRACTION = 0.6
_N_DEFECT_WEIGHTS = (0.75, 0.2, 0.05)  # one, two or three defects on a defective scan


def quality_of(defects: dict[str, float]) -> str:
    """`good` | `usable` | `reject` from the defect severities, by QUALITY_RULES."""
    if not defects:
        return "good"
    ratios = [sev / QUALITY_RULES[name].reject_at for name, sev in defects.items()]
    if max(ratios) >= 1.0 or sum(ratios) >= COMBINED_REJECT:
        return "reject"
    return "usable"


def sample_defects(rng: np.random.Generator, defect_rate: float) -> dict[str, float]:
    """With probability defect_rate one to three defects, each mild or unreadable (50/50)."""
    # Draw a fixed number of values so the stream does not depend on the outcome.
    u = rng.random(8)
    order = rng.permutation(len(DEFECTS))
    if u[0] >= defect_rate:
        return {}
    k = 1 + int(np.searchsorted(np.cumsum(_N_DEFECT_WEIGHTS), u[1] * sum(_N_DEFECT_WEIGHTS)))
    out: dict[str, float] = {}
    for j in range(min(k, 3)):
        name = DEFECTS[int(order[j])]
        thr = QUALITY_RULES[name].reject_at
        if u[2 + 2 * j] < 0.5:
            sev = thr + u[3 + 2 * j] * (1.0 - thr)
        else:
            sev = 0.08 + u[3 + 2 * j] * (USABLE_MAX_FRACTION * thr - 0.08)
        out[name] = round(float(sev), 3)
    return out


def fast_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide blurs run on a downscaled copy (same look, a fraction of the time)."""
    if sigma < 0.3:
        return img
    if sigma <= 3.0:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    h, w = img.shape[:2]
    f = sigma / 2.0
    small = cv2.resize(img, (max(4, int(w / f)), max(4, int(h / f))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    if length < 1.0:
        return img
    h, w = img.shape[:2]
    f = max(1.0, length / 9.0)
    small = (
        img if f == 1.0 else cv2.resize(img, (int(w / f), int(h / f)), interpolation=cv2.INTER_AREA)
    )
    k = max(3, round(length / f) | 1)
    kernel = np.zeros((k, k), np.float32)
    c = k // 2
    dx, dy = math.cos(angle) * c, math.sin(angle) * c
    cv2.line(
        kernel,
        (round(c - dx), round(c - dy)),
        (round(c + dx), round(c + dy)),
        1.0,
        1,
        cv2.LINE_AA,
    )
    kernel /= kernel.sum()
    out = cv2.filter2D(small, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return out if f == 1.0 else cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)


def _shift(arr: np.ndarray, dx: float, dy: float, nearest: bool = False) -> np.ndarray:
    m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    h, w = arr.shape[:2]
    return cv2.warpAffine(arr, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)


def _occlusion(img: np.ndarray, rng: np.random.Generator, geo: Geometry, s: float) -> None:
    """Upper (or lower) lid with lashes in front of the pupil: dark, blurred, slightly warm."""
    size = geo.size
    fov_r = geo.radius
    lid = np.zeros((size, size), np.float32)
    lashes = np.zeros((size, size), np.float32)
    cover = 0.8 * s * 2 * fov_r
    edge_y = geo.centre[1] - fov_r + cover
    xs = np.arange(size, dtype=np.float32)
    sag = fov_r * rng.uniform(0.2, 0.45)
    curve = edge_y - sag * ((xs - geo.centre[0]) / fov_r) ** 2
    rows = np.arange(size, dtype=np.float32)[:, None]
    lid[:] = (rows < curve[None, :]).astype(np.float32)
    for _ in range(int(rng.integers(8, 22))):
        x0 = float(rng.uniform(geo.centre[0] - fov_r, geo.centre[0] + fov_r))
        y0 = float(np.interp(x0, xs, curve))
        length = fov_r * rng.uniform(0.1, 0.3) * (0.5 + s)
        bend = rng.normal(0, 0.4)
        pts = []
        for t in np.linspace(0, 1, 8):
            pts.append((x0 + bend * length * t * t, y0 + length * t))
        thick = max(2, int(fov_r * 0.025))
        cv2.polylines(lashes, [np.array(pts, np.int32)], False, 1.0, thick, cv2.LINE_AA)
    lid = fast_blur(lid, fov_r * 0.05)
    lashes = fast_blur(lashes, fov_r * 0.02)
    if rng.random() < 0.3:  # a lower lid instead: same shapes, flipped
        lid, lashes = lid[::-1], lashes[::-1]
    glow = np.clip(fast_blur(lid, fov_r * 0.08) - lid, 0, 1) * 0.6
    img *= (1.0 - 0.92 * lid)[..., None]
    img *= (1.0 - 0.75 * np.clip(lashes, 0, 1))[..., None]
    img += glow[..., None] * np.array([0.08, 0.18, 0.35], np.float32)


def _haze_flare(
    img: np.ndarray, rng: np.random.Generator, geo: Geometry, s: float, fov: np.ndarray
) -> None:
    """Media opacity or stray light: contrast drops under a veil, a bright crescent at one edge."""
    size = geo.size
    h = min(0.95, 1.4 * s)
    x, y = coords(size)
    a = rng.uniform(0, 2 * math.pi)
    t = ((x - geo.centre[0]) * math.cos(a) + (y - geo.centre[1]) * math.sin(a)) / geo.radius
    field = np.clip(0.55 + 0.45 * t, 0, 1) ** 1.5
    veil_colour = np.array([0.55, 0.62, 0.7], np.float32) * rng.uniform(0.8, 1.1)
    flare = np.exp(-((1.0 - t) ** 2) / (2 * 0.12**2)) * h
    w = (h * (0.6 + 0.4 * field) * fov)[..., None]
    img[:] = img * (1.0 - w) + veil_colour * w
    img += (flare * fov)[..., None] * np.array([0.45, 0.6, 0.75], np.float32)


def apply_scene_defects(
    img: np.ndarray,
    lesion_mask: np.ndarray,
    fov: np.ndarray,
    *,
    rng: np.random.Generator,
    geo: Geometry,
    defects: dict[str, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Defects of the eye, the optics and the exposure, at working scale; returns image, mask."""
    fov_r = geo.radius
    angles = rng.uniform(0, 2 * math.pi, 4)
    if (s := defects.get("off_centre", 0.0)) > 0:
        d = 1.6 * fov_r * s
        dx, dy = d * math.cos(angles[0]), d * math.sin(angles[0])
        img = _shift(img, dx, dy)
        lesion_mask = _shift(lesion_mask.astype(np.uint8), dx, dy, nearest=True).astype(bool)
        fov = _shift(fov, dx, dy)
    if (s := defects.get("eyelash_occlusion", 0.0)) > 0:
        _occlusion(img, rng, geo, s)
    if (s := defects.get("haze_flare", 0.0)) > 0:
        _haze_flare(img, rng, geo, s, fov)
    if (s := defects.get("uneven_illumination", 0.0)) > 0:
        x, y = coords(geo.size)
        t = (x - geo.centre[0]) * math.cos(angles[1]) + (y - geo.centre[1]) * math.sin(angles[1])
        ramp = np.clip((t / fov_r + 1.0) / 2.0, 0, 1)
        img *= np.power(np.float32(0.01), s * (1.3 * ramp - 0.3))[..., None]
    if (s := defects.get("underexposure", 0.0)) > 0:
        img *= np.float32(0.02 ** (s**1.3))
    if (s := defects.get("overexposure", 0.0)) > 0:
        img *= np.float32(1.0 + 5.0 * s**1.3)
        img += (0.25 * s * fov)[..., None]
        np.minimum(img, 1.0, out=img)
    if (s := defects.get("defocus", 0.0)) > 0:
        img = fast_blur(img, 0.1 * fov_r * s**1.5)
    if (s := defects.get("motion_blur", 0.0)) > 0:
        img = motion_blur(img, 0.45 * fov_r * s**1.5, float(angles[2]))
    return img, lesion_mask


def effective_side(size: int, defects: dict[str, float]) -> int:
    """Pixels of real detail across the image after the low-resolution defect."""
    s = defects.get("low_resolution", 0.0)
    return max(16, round(size * 0.02 ** (s**1.2)))


def jpeg_quality(s: float) -> int:
    return max(1, round(90 * (1.0 - s) ** 2))


def apply_jpeg(img: np.ndarray, s: float) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality(s)])
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    if out is None:
        raise RuntimeError("OpenCV could not JPEG-round-trip a synthetic scan")
    return out
