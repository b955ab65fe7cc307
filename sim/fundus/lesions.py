"""Diabetic retinopathy lesions by ICDR grade, drawn over the healthy retina.

Grade 0 draws nothing. Grade 1: microaneurysms only. Grade 2: plus dot/blot haemorrhages,
hard exudates, some cotton-wool spots. Grade 3: haemorrhages in all four quadrants, venous
beading, more cotton-wool spots. Grade 4: neovascularisation, sometimes a preretinal haemorrhage.
Counts are generous at grades >= 2 so that referable disease shows at 224 px model input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from sim.fundus.anatomy import Geometry

LESION_TYPES = (
    "microaneurysm",
    "haemorrhage",
    "hard_exudate",
    "cotton_wool_spot",
    "venous_beading",
    "neovascularisation",
    "preretinal_haemorrhage",
)


@dataclass(frozen=True)
class LesionPlan:
    """How many of each lesion a scan of one grade gets (decided before drawing)."""

    microaneurysms: int = 0
    haemorrhages: int = 0
    exudate_clusters: int = 0
    cotton_wool: int = 0
    beading: float = 0.0  # venous calibre modulation 0..1, applied by the vessel renderer
    nv_patches: int = 0
    preretinal: bool = False


def plan_lesions(rng: np.random.Generator, grade: int) -> LesionPlan:
    if grade == 0:
        return LesionPlan()
    if grade == 1:
        return LesionPlan(microaneurysms=int(rng.integers(3, 12)))
    if grade == 2:
        return LesionPlan(
            microaneurysms=int(rng.integers(6, 20)),
            haemorrhages=int(rng.integers(8, 18)),
            exudate_clusters=int(rng.integers(1, 4)) if rng.random() < 0.7 else 0,
            cotton_wool=int(rng.integers(1, 3)) if rng.random() < 0.35 else 0,
        )
    severe = LesionPlan(
        microaneurysms=int(rng.integers(12, 30)),
        haemorrhages=int(rng.integers(22, 45)),
        exudate_clusters=int(rng.integers(1, 5)) if rng.random() < 0.7 else 0,
        cotton_wool=int(rng.integers(2, 6)),
        beading=float(rng.uniform(0.3, 0.55)) if rng.random() < 0.7 else 0.0,
    )
    if grade == 3:
        return severe
    return LesionPlan(
        microaneurysms=severe.microaneurysms,
        haemorrhages=int(rng.integers(12, 35)),
        exudate_clusters=severe.exudate_clusters,
        cotton_wool=severe.cotton_wool,
        beading=severe.beading,
        nv_patches=int(rng.integers(1, 4)),
        preretinal=bool(rng.random() < 0.4),
    )


def _spot(
    rng: np.random.Generator, geo: Geometry, max_r: float = 0.88, quadrant: int | None = None
) -> tuple[float, float]:
    """A random retinal location inside the FOV, away from the optic disc."""
    while True:
        r = geo.radius * max_r * math.sqrt(rng.random())
        a = (
            rng.uniform(0, 2 * math.pi)
            if quadrant is None
            else (quadrant * math.pi / 2 + rng.uniform(0.05, math.pi / 2 - 0.05))
        )
        x = geo.fovea[0] + r * math.cos(a)
        y = geo.fovea[1] + r * math.sin(a)
        if math.hypot(x - geo.centre[0], y - geo.centre[1]) > geo.radius * 0.92:
            continue
        if math.hypot(x - geo.disc[0], y - geo.disc[1]) > geo.disc_radius * 1.4:
            return x, y


def _p(x: float, y: float) -> tuple[int, int]:
    return round(x * 16), round(y * 16)  # 4 fractional bits for cv2 shift=4


def draw_lesions(
    img: np.ndarray, rng: np.random.Generator, geo: Geometry, plan: LesionPlan
) -> np.ndarray:
    """Draw the planned lesions into img (in place); returns the bool mask of drawn lesions."""
    s = geo.size
    mask = np.zeros((s, s), bool)
    if plan == LesionPlan():
        return mask
    fov_r = geo.radius
    red = np.zeros((s, s), np.uint8)
    yellow = np.zeros((s, s), np.uint8)
    white = np.zeros((s, s), np.uint8)
    nv = np.zeros((s, s), np.uint8)
    for _ in range(plan.microaneurysms):
        x, y = _spot(rng, geo, 0.7)
        rad = fov_r * rng.uniform(0.0035, 0.006)
        cv2.circle(red, _p(x, y), max(1, int(rad * 16)), 255, -1, cv2.LINE_AA, shift=4)
    for i in range(plan.haemorrhages):
        # Severe NPDR spreads haemorrhages over all four quadrants (the 4-2-1 rule).
        x, y = _spot(rng, geo, 0.85, quadrant=i % 4 if plan.haemorrhages >= 20 else None)
        kind = rng.random()
        if kind < 0.35:  # dot
            rad = fov_r * rng.uniform(0.009, 0.016)
            cv2.circle(
                red, _p(x, y), int(rad * 16), int(rng.integers(200, 256)), -1, cv2.LINE_AA, shift=4
            )
        elif kind < 0.9:  # blot: a few overlapping ellipses
            for _ in range(int(rng.integers(2, 5))):
                ax = (
                    int(fov_r * rng.uniform(0.012, 0.03) * 16),
                    int(fov_r * rng.uniform(0.009, 0.022) * 16),
                )
                c = _p(x + rng.normal(0, fov_r * 0.008), y + rng.normal(0, fov_r * 0.008))
                cv2.ellipse(
                    red,
                    c,
                    ax,
                    rng.uniform(0, 180),
                    0,
                    360,
                    int(rng.integers(190, 256)),
                    -1,
                    cv2.LINE_AA,
                    shift=4,
                )
        else:  # flame: elongated along the nerve fibres, i.e. radial from the disc
            ang = math.degrees(math.atan2(y - geo.disc[1], x - geo.disc[0]))
            ax = (
                int(fov_r * rng.uniform(0.03, 0.055) * 16),
                int(fov_r * rng.uniform(0.007, 0.012) * 16),
            )
            cv2.ellipse(red, _p(x, y), ax, ang, 0, 360, 220, -1, cv2.LINE_AA, shift=4)
    for _ in range(plan.exudate_clusters):
        cx, cy = _spot(rng, geo, 0.5)
        spread = fov_r * rng.uniform(0.03, 0.08)
        for _ in range(int(rng.integers(6, 26))):
            x, y = cx + rng.normal(0, spread), cy + rng.normal(0, spread)
            rad = fov_r * rng.uniform(0.003, 0.011)
            cv2.circle(yellow, _p(x, y), max(1, int(rad * 16)), 255, -1, cv2.LINE_AA, shift=4)
    for _ in range(plan.cotton_wool):
        # Fluffy, feathered, greyish-white: a few overlapping translucent puffs along the fibres.
        x, y = _spot(rng, geo, 0.6)
        along = math.degrees(math.atan2(y - geo.disc[1], x - geo.disc[0])) + 90
        for _ in range(int(rng.integers(2, 5))):
            ax = (
                int(fov_r * rng.uniform(0.015, 0.035) * 16),
                int(fov_r * rng.uniform(0.01, 0.02) * 16),
            )
            c = _p(x + rng.normal(0, fov_r * 0.012), y + rng.normal(0, fov_r * 0.012))
            cv2.ellipse(
                white,
                c,
                ax,
                along + rng.normal(0, 25),
                0,
                360,
                int(rng.integers(150, 256)),
                -1,
                cv2.LINE_AA,
                shift=4,
            )
    for k in range(plan.nv_patches):
        # NVD sits on the disc, NVE along the arcades: a tangle of fine looping vessels.
        if k == 0 and rng.random() < 0.6:
            cx, cy = geo.disc[0] + rng.normal(0, geo.disc_radius * 0.3), geo.disc[1]
        else:
            cx, cy = _spot(rng, geo, 0.8)
        size = fov_r * rng.uniform(0.06, 0.11)
        for _ in range(int(rng.integers(10, 22))):
            a = rng.uniform(0, 2 * math.pi)
            pts = [(cx + rng.normal(0, size * 0.4), cy + rng.normal(0, size * 0.4))]
            for _ in range(6):
                a += rng.normal(0, 0.9)
                step = size * 0.18
                pts.append((pts[-1][0] + step * math.cos(a), pts[-1][1] + step * math.sin(a)))
            arr = np.array([_p(px, py) for px, py in pts], np.int32)
            thick = max(1, round(fov_r * 0.005))
            cv2.polylines(nv, [arr], False, 255, thick, cv2.LINE_AA, shift=4)
    if plan.preretinal:
        x, y = _spot(rng, geo, 0.6)
        ax = (int(fov_r * rng.uniform(0.1, 0.16) * 16), int(fov_r * rng.uniform(0.07, 0.11) * 16))
        cv2.ellipse(red, _p(x, y), ax, 0, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
        # Blood settles: a flat fluid level cuts off the top ("boat-shaped").
        top = int(y - ax[1] / 16 * rng.uniform(0.1, 0.5))
        pre = np.zeros_like(red)
        cv2.ellipse(pre, _p(x, y), ax, 0, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
        band = pre[: max(0, top)]
        red[: max(0, top)][band > 0] = 0
    soft = max(0.5, fov_r * 0.002)
    # (map, blur sigma, how to paint it, alpha above which the pixel counts as lesion)
    layers = (
        (red, soft, _darken(0.3, 0.22, 0.6), 0.25),
        (nv, soft, _darken(0.5, 0.45, 0.75), 0.25),
        (yellow, soft * 0.8, _cover(0.38, 0.82, 0.97, 1.0), 0.25),
        (white, fov_r * 0.01, _cover(0.7, 0.8, 0.88, 0.7), 0.2),
    )
    for layer, sigma, paint, level in layers:
        x, y, w, h = cv2.boundingRect(layer)
        if w == 0:
            continue
        pad = math.ceil(3 * sigma) + 1
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(s, x + w + pad), min(s, y + h + pad)
        alpha = cv2.GaussianBlur(layer[y0:y1, x0:x1], (0, 0), sigma).astype(np.float32) / 255.0
        paint(img[y0:y1, x0:x1], alpha)
        mask[y0:y1, x0:x1] |= alpha > level
    return mask


def _darken(b: float, g: float, r: float) -> Callable[[np.ndarray, np.ndarray], None]:
    """Blood absorbs: multiply toward the given BGR transmission where alpha is 1."""
    loss = 1.0 - np.array([b, g, r], np.float32)

    def paint(roi: np.ndarray, alpha: np.ndarray) -> None:
        roi *= 1.0 - alpha[..., None] * loss

    return paint


def _cover(
    b: float, g: float, r: float, opacity: float
) -> Callable[[np.ndarray, np.ndarray], None]:
    """Exudates and cotton-wool spots scatter: blend toward their own colour."""
    colour = np.array([b, g, r], np.float32)

    def paint(roi: np.ndarray, alpha: np.ndarray) -> None:
        a = (alpha * opacity)[..., None]
        roi[:] = roi * (1.0 - a) + colour * a

    return paint
