"""The healthy retina of a right eye: field of view, background, optic disc, macula, vessels.

Everything is drawn on float32 BGR reflectance (0..1) at the working scale; sizes are fractions of
the FOV radius so the same seed gives the same eye at any image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from sim.fundus.cameras import Pigmentation


@dataclass(frozen=True)
class Geometry:
    """Where the landmarks are, in working-scale pixels (right-eye layout: disc on the right)."""

    size: int
    centre: tuple[float, float]
    radius: float
    disc: tuple[float, float]
    disc_radius: float
    fovea: tuple[float, float]


@dataclass
class VesselTree:
    """Polylines with a width per point; `vein` decides colour and what venous beading affects."""

    paths: list[np.ndarray] = field(default_factory=list)  # each (n, 2) float
    widths: list[np.ndarray] = field(default_factory=list)  # each (n,) in pixels
    vein: list[bool] = field(default_factory=list)


def make_geometry(rng: np.random.Generator, size: int, fov_ratio: float) -> Geometry:
    radius = size / 2 * fov_ratio * rng.uniform(0.98, 1.02)
    cx = size / 2 + rng.normal(0, 0.01) * size
    cy = size / 2 + rng.normal(0, 0.01) * size
    disc_r = radius * rng.uniform(0.105, 0.13)
    fovea = (cx + radius * rng.normal(-0.04, 0.02), cy + radius * rng.normal(0.03, 0.02))
    disc = (fovea[0] + radius * rng.uniform(0.52, 0.6), fovea[1] - radius * rng.uniform(0.02, 0.08))
    return Geometry(size, (cx, cy), radius, disc, disc_r, fovea)


def coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return x, y


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Band-limited noise in about -1..1: random values on a coarse grid, upscaled smoothly."""
    grid = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    big = cv2.resize(
        grid, (size + 3 * size // cells, size + 3 * size // cells), interpolation=cv2.INTER_CUBIC
    )
    o = size // cells
    return big[o : o + size, o : o + size]


def background(rng: np.random.Generator, geo: Geometry, pig: Pigmentation) -> np.ndarray:
    """Fundus reflectance without disc or vessels: base colour, falloff, mottling, choroid."""
    s = geo.size
    x, y = coords(s)
    r = np.sqrt((x - geo.centre[0]) ** 2 + (y - geo.centre[1]) ** 2) / geo.radius
    base = np.array(pig.base_bgr, np.float32) * rng.uniform(0.88, 1.12, 3).astype(np.float32)
    # Brighter around the posterior pole, darker to the periphery (fundus reflectance + optics).
    light = 1.05 - 0.35 * np.clip(r, 0, 1.2) ** 2.2
    mottle = 1.0 + 0.07 * smooth_noise(rng, s, 6) + 0.04 * smooth_noise(rng, s, 24)
    img = base[None, None, :] * (light * mottle)[..., None]
    if pig.choroid > 0.02:
        # Tigroid fundus: choroidal vessels show as dark-orange bands between lighter stripes.
        n = smooth_noise(rng, s, 10) * 7.0 + smooth_noise(rng, s, 22) * 2.0
        bands = np.abs(np.sin(n)).astype(np.float32) ** 0.6
        strength = pig.choroid * 0.35 * np.clip(r * 1.4, 0.2, 1.0)
        shade = 1.0 - strength * (1.0 - bands)
        img[..., 0] *= shade
        img[..., 1] *= shade
        img[..., 2] *= 1.0 - 0.4 * strength * (1.0 - bands)
    # Macula: darker, browner (xanthophyll), with a small foveal reflex.
    d2 = ((x - geo.fovea[0]) ** 2 + (y - geo.fovea[1]) ** 2) / geo.radius**2
    mac = 1.0 - 0.32 * np.exp(-d2 / (2 * 0.16**2))
    img *= mac[..., None]
    img[..., 0] *= 1.0 - 0.25 * np.exp(-d2 / (2 * 0.1**2))
    reflex = 0.25 * np.exp(-d2 / (2 * 0.012**2))
    img += reflex[..., None] * np.array([0.5, 0.6, 0.6], np.float32)
    return img.astype(np.float32)


def draw_disc(img: np.ndarray, rng: np.random.Generator, geo: Geometry, pig: Pigmentation) -> None:
    """Optic disc: pale pink rim, brighter yellow-white cup, soft edge, darker surrounding ring."""
    s = geo.size
    r = geo.disc_radius
    mask: np.ndarray = np.zeros((s, s), np.float32)
    axes = (int(r * rng.uniform(0.9, 1.0)), int(r * rng.uniform(1.0, 1.12)))
    centre = (int(geo.disc[0]), int(geo.disc[1]))
    cv2.ellipse(mask, centre, axes, rng.uniform(-15, 15), 0, 360, 1.0, -1, cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.8, r * 0.12))
    cup: np.ndarray = np.zeros((s, s), np.float32)
    cup_ratio = rng.uniform(0.3, 0.55)
    cup_c = (int(geo.disc[0] - r * 0.15), int(geo.disc[1]))
    cv2.ellipse(cup, cup_c, (int(r * cup_ratio), int(r * cup_ratio * 1.1)), 0, 0, 360, 1.0, -1)
    cup = cv2.GaussianBlur(cup, (0, 0), max(0.8, r * 0.2))
    rim_colour = np.array([0.45, 0.62, 0.95], np.float32) * pig.disc_contrast
    cup_colour = np.array([0.75, 0.88, 0.98], np.float32)
    ring = cv2.GaussianBlur(mask, (0, 0), max(1.0, r * 0.25)) - mask
    img *= (1.0 - 0.5 * np.clip(ring, 0, 1))[..., None]
    img[:] = img * (1 - mask[..., None]) + rim_colour * mask[..., None]
    img[:] = img * (1 - 0.85 * cup[..., None]) + cup_colour * 0.85 * cup[..., None]


def _grow(  # noqa: PLR0917 (rewritten next)
    rng: np.random.Generator,
    tree: VesselTree,
    geo: Geometry,
    start: tuple[float, float],
    heading: float,
    width: float,
    length: float,
    curvature: float,
    depth: int,
    vein: bool,
    beading: float,
) -> None:
    """Grow one vessel by a curved random walk, spawning thinner branches along the way."""
    step = geo.radius * 0.018
    n = max(2, int(length / step))
    pts = np.empty((n + 1, 2), np.float32)
    pts[0] = start
    x, y, a = start[0], start[1], heading
    turns = rng.normal(0.0, 0.07, n) + curvature
    branch_at = []
    for i in range(n):
        a += turns[i]
        x += math.cos(a) * step
        y += math.sin(a) * step
        pts[i + 1] = (x, y)
        if math.hypot(x - geo.centre[0], y - geo.centre[1]) > geo.radius * 1.02:
            pts = pts[: i + 2]
            break
        if depth > 0 and i > 2 and rng.random() < 0.09:
            branch_at.append((i + 1, a))
    m = len(pts)
    taper = np.linspace(1.0, 0.45, m, dtype=np.float32)
    w = width * taper
    if vein and beading > 0:
        phase = rng.uniform(0, 6.28)
        w = w * (1.0 + beading * np.sin(np.arange(m, dtype=np.float32) * 1.9 + phase))
    tree.paths.append(pts)
    tree.widths.append(w)
    tree.vein.append(vein)
    for i, a_here in branch_at:
        if i >= m:
            continue
        side = rng.choice([-1.0, 1.0])
        _grow(
            rng,
            tree,
            geo,
            (float(pts[i, 0]), float(pts[i, 1])),
            a_here + side * rng.uniform(0.45, 1.1),
            float(w[i]) * rng.uniform(0.55, 0.8),
            length * rng.uniform(0.3, 0.6),
            rng.normal(0, 0.02),
            depth - 1,
            vein,
            beading,
        )


def vessel_tree(rng: np.random.Generator, geo: Geometry, beading: float = 0.0) -> VesselTree:
    """Arteries and veins leaving the disc: two temporal arcades around the macula, nasal trunks."""
    tree = VesselTree()
    big = geo.radius * 0.022
    for vein in (True, False):
        width = big * (1.0 if vein else 0.72)
        off = geo.disc_radius * (0.15 if vein else -0.15)
        start = (geo.disc[0] + off, geo.disc[1])
        # Temporal arcades: leave up/down, then bend toward the macula side (left for a right eye).
        for sign in (-1.0, 1.0):
            heading = sign * (math.pi / 2 + rng.uniform(0.15, 0.45) + (0.12 if vein else 0.0))
            _grow(
                rng,
                tree,
                geo,
                start,
                heading,
                width,
                geo.radius * 1.7,
                sign * rng.uniform(0.028, 0.04),
                3,
                vein,
                beading,
            )
            # Nasal trunks head to the right, fanning out.
            _grow(
                rng,
                tree,
                geo,
                start,
                sign * rng.uniform(0.35, 0.9),
                width * 0.8,
                geo.radius * 0.9,
                -sign * rng.uniform(0.0, 0.02),
                2,
                vein,
                beading,
            )
        # Small papillomacular vessels toward the fovea.
        for _ in range(2):
            _grow(
                rng,
                tree,
                geo,
                start,
                math.pi + rng.normal(0, 0.35),
                width * 0.35,
                geo.radius * 0.35,
                rng.normal(0, 0.03),
                1,
                vein,
                0.0,
            )
    return tree


def render_vessels(img: np.ndarray, tree: VesselTree, geo: Geometry) -> None:
    """Darken the image along the vessels: veins dark purple-red, arteries lighter with a reflex."""
    s = geo.size
    veins = np.zeros((s, s), np.uint8)
    arts = np.zeros((s, s), np.uint8)
    reflex = np.zeros((s, s), np.uint8)
    for pts, w, vein in zip(tree.paths, tree.widths, tree.vein, strict=True):
        target = veins if vein else arts
        ipts = np.round(pts * 16).astype(np.int32)  # 4 fractional bits for sub-pixel lines
        for i in range(len(ipts) - 1):
            t = max(1, round(float(w[i])))
            p, q = (int(ipts[i, 0]), int(ipts[i, 1])), (int(ipts[i + 1, 0]), int(ipts[i + 1, 1]))
            cv2.line(target, p, q, 255, t, cv2.LINE_AA, shift=4)
            if not vein and w[i] > 2.5:
                cv2.line(reflex, p, q, 255, 1, cv2.LINE_AA, shift=4)
    sigma = max(0.5, geo.radius * 0.0025)
    v = cv2.GaussianBlur(veins, (0, 0), sigma).astype(np.float32) / 255.0
    a = cv2.GaussianBlur(arts, (0, 0), sigma).astype(np.float32) / 255.0
    rf = cv2.GaussianBlur(reflex, (0, 0), sigma).astype(np.float32) / 255.0
    # Foveal avascular zone: small vessels fade out before the fovea.
    x, y = coords(s)
    d2 = ((x - geo.fovea[0]) ** 2 + (y - geo.fovea[1]) ** 2) / geo.radius**2
    faz = 1.0 - np.exp(-d2 / (2 * 0.07**2))
    v *= faz
    a *= faz
    vein_att = np.array([0.42, 0.40, 0.66], np.float32)
    art_att = np.array([0.68, 0.62, 0.86], np.float32)
    img *= 1.0 - v[..., None] * (1.0 - vein_att)
    img *= 1.0 - a[..., None] * (1.0 - art_att)
    img += (0.12 * rf * a)[..., None]
