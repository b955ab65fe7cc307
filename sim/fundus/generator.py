"""Synthetic fundus photographs with ICDR grade, quality class and defect labels.

One sample is a pure function of (seed, index, arguments). Each aspect (labels, anatomy, lesions,
defects, noise) draws from its own random stream, so forcing one (say `grade=4`) leaves the eye,
camera and defects of that sample unchanged: a controlled pair for tests and drift scenarios.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from shared.errors import EdgewardError
from sim.fundus.anatomy import (
    Geometry,
    background,
    coords,
    draw_disc,
    make_geometry,
    mirrored,
    render_vessels,
    vessel_tree,
)
from sim.fundus.cameras import (
    CAMERAS,
    PIGMENTATIONS,
    PIGMENTS,
    UNSEEN_CAMERAS,
    CameraProfile,
    camera_profile,
)
from sim.fundus.defects import (
    DEFECTS,
    QUALITY_RULES,
    apply_jpeg,
    apply_scene_defects,
    effective_side,
    quality_of,
    sample_defects,
)
from sim.fundus.lesions import draw_lesions, plan_lesions
from sim.fundus.shift import ShiftSpec

__all__ = [
    "CAMERAS",
    "DEFECTS",
    "GENERATOR_VERSION",
    "GRADE_WEIGHTS",
    "PIGMENTATIONS",
    "UNSEEN_CAMERAS",
    "FundusLabels",
    "FundusSample",
    "ShiftSpec",
    "generate",
    "generate_sample",
]

# Bump whenever the same arguments would give different pixels or labels.
GENERATOR_VERSION = "1.4.0"
# Like a screening population, with enough referable scans (grade >= 2) to train on.
GRADE_WEIGHTS: tuple[float, ...] = (0.45, 0.15, 0.20, 0.12, 0.08)
_WORK_MAX = 640  # images larger than this are drawn at half size, then upscaled
# Sensor noise std over the camera's nominal figure (was 1.5): real clinic photographs are
# smoother than the twin was (detail contrast 0.123 twin vs 0.070 real after the colour change).
NOISE_GAIN = 0.8


@dataclass(frozen=True)
class FundusLabels:
    grade: int  # ICDR 0-4
    referable: bool  # grade >= 2
    quality: str  # "good" | "usable" | "reject"
    defects: dict[str, float]  # defect name -> severity 0..1 (empty for clean scans)
    camera: str  # simulated camera model name
    pigmentation: str  # "light" | "medium" | "dark"
    laterality: str  # "L" | "R"


@dataclass(frozen=True)
class FundusSample:
    image_bgr: np.ndarray  # uint8 HxWx3 (BGR, as cv2)
    labels: FundusLabels
    lesion_mask: np.ndarray  # bool HxW, True where lesions were drawn
    index: int
    seed: int


def _check(  # noqa: PLR0917
    seed: int,
    index: int,
    size: int,
    defect_rate: float,
    grade: int | None,
    defects: dict[str, float] | None,
    pigmentation: str | None,
) -> None:
    if seed < 0 or index < 0:
        raise EdgewardError(f"fundus generator: seed {seed} / index {index} must be >= 0")
    if not 64 <= size <= 4096:
        raise EdgewardError(f"fundus generator: size {size} px is out of range; use 64-4096")
    if not 0.0 <= defect_rate <= 1.0:
        raise EdgewardError(f"fundus generator: defect rate {defect_rate} must be within 0-1")
    if grade is not None and grade not in range(5):
        raise EdgewardError(f"fundus generator: grade {grade} is not an ICDR grade; use 0-4")
    for name, sev in (defects or {}).items():
        if name not in QUALITY_RULES:
            raise EdgewardError(
                f"fundus generator: unknown defect {name!r}; known: {', '.join(DEFECTS)}"
            )
        if not 0.0 <= sev <= 1.0:
            raise EdgewardError(f"fundus generator: defect {name} severity {sev} not within 0-1")
    if pigmentation is not None and pigmentation not in PIGMENTS:
        raise EdgewardError(
            f"fundus generator: unknown pigmentation {pigmentation!r}; "
            f"use one of {', '.join(PIGMENTATIONS)}"
        )


def _draw_labels(
    rng: np.random.Generator,
    grade: int | None,
    camera: str | None,
    pigmentation: str | None,
    shift: ShiftSpec | None,
) -> tuple[int, str, str, str]:
    u = rng.random(4)  # always four draws: forcing one label must not move the others
    weights = np.array((shift and shift.grade_weights) or GRADE_WEIGHTS, float)
    drawn_grade = int(np.searchsorted(np.cumsum(weights / weights.sum()), u[0], side="right"))
    drawn_camera = CAMERAS[int(u[1] * len(CAMERAS))]
    if shift is not None and shift.new_camera is not None:
        drawn_camera = shift.new_camera
    drawn_pig = PIGMENTATIONS[int(u[2] * len(PIGMENTATIONS))]
    laterality = "R" if u[3] < 0.5 else "L"
    return (
        min(4, drawn_grade) if grade is None else grade,
        drawn_camera if camera is None else camera,
        drawn_pig if pigmentation is None else pigmentation,
        laterality,
    )


def generate_sample(  # noqa: PLR0917 (the documented signature)
    seed: int,
    index: int,
    size: int = 1024,
    defect_rate: float = 0.2,
    grade: int | None = None,
    defects: dict[str, float] | None = None,
    camera: str | None = None,
    pigmentation: str | None = None,
    shift: ShiftSpec | None = None,
) -> FundusSample:
    """One scan; grade/defects/camera/pigmentation force a value instead of drawing it."""
    _check(seed, index, size, defect_rate, grade, defects, pigmentation)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(5)]
    r_labels, r_anat, r_lesion, r_defect, r_noise = streams
    g, cam_name, pig_name, laterality = _draw_labels(r_labels, grade, camera, pigmentation, shift)
    drawn_defects = sample_defects(r_defect, defect_rate)
    chosen = dict(drawn_defects if defects is None else defects)
    # Rounded once, so the label, the quality class and the pixels all use the same severities.
    chosen = {k: round(float(v), 3) for k, v in chosen.items() if round(float(v), 3) > 0}
    cam = camera_profile(cam_name)
    pig = PIGMENTS[pig_name]

    work = size if size <= _WORK_MAX else size // 2
    geo = make_geometry(r_anat, work, cam.fov_ratio)
    img = background(r_anat, geo, pig)
    draw_disc(img, r_anat, geo, pig)
    plan = plan_lesions(r_lesion, g)
    render_vessels(img, vessel_tree(r_anat, geo, beading=plan.beading), geo)
    mask = draw_lesions(img, r_lesion, geo, plan)

    sigma = cam.softness * geo.radius
    if sigma >= 0.5:  # optics softness; below half a pixel it would not show
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    fov = _fov_mask(geo)
    img *= (fov * _vignette(geo, cam.vignette))[..., None]
    if laterality == "L":  # drawn as a right eye; a left eye is its mirror image
        img, mask, fov = img[:, ::-1].copy(), mask[:, ::-1].copy(), fov[:, ::-1].copy()
        geo = mirrored(geo)
    img, mask = apply_scene_defects(img, mask, fov, rng=r_defect, geo=geo, defects=chosen)
    # Sensor noise: luminance grain a little over a pixel wide (demosaicing correlates it). It
    # does not scale with exposure, so dark scans get noisy.
    half = max(8, work // 2)
    noise = np.float32(cam.noise * NOISE_GAIN)
    grain = r_noise.standard_normal((half, half), dtype=np.float32) * noise
    img += cv2.resize(grain, (work, work), interpolation=cv2.INTER_LINEAR)[..., None]
    # |x| only touches the faint noise below black; saturates and rounds in one pass.
    out = _tone(cv2.convertScaleAbs(img, alpha=255.0), cam, shift)
    side = effective_side(size, chosen)
    if side < work:
        out = cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA)
    if out.shape[0] != size:
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        mask = mask.astype(bool)
    if (s := chosen.get("jpeg_compression", 0.0)) > 0:
        out = apply_jpeg(out, s)
    labels = FundusLabels(
        grade=g,
        referable=g >= 2,
        quality=quality_of(chosen),
        defects=chosen,
        camera=cam_name,
        pigmentation=pig_name,
        laterality=laterality,
    )
    return FundusSample(image_bgr=out, labels=labels, lesion_mask=mask, index=index, seed=seed)


def _tone(img: np.ndarray, cam: CameraProfile, shift: ShiftSpec | None) -> np.ndarray:
    """The camera's rendering of the sensor values: white balance, tone curve, saturation."""
    gains = np.array(cam.gains_bgr, np.float64)
    if shift is not None:
        gains = gains * np.array(shift.colour_cast, np.float64)
    x = np.arange(256, dtype=np.float64)[:, None] / 255.0
    table = np.clip((x * gains) ** cam.gamma * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out: np.ndarray = cv2.LUT(img, table.reshape(256, 1, 3))
    if cam.saturation != 1.0:
        grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        out = cv2.addWeighted(out, cam.saturation, grey, 1.0 - cam.saturation, 0.0)
    return out


def _vignette(geo: Geometry, strength: float) -> np.ndarray:
    """Optical falloff toward the FOV edge; smooth, so computed at a quarter size and upscaled."""
    q = max(32, geo.size // 4)
    f = q / geo.size
    x, y = coords(q)
    r2 = ((x - geo.centre[0] * f) ** 2 + (y - geo.centre[1] * f) ** 2) / (geo.radius * f) ** 2
    small = (1.0 - strength * np.clip(r2, 0, 1) ** 1.6).astype(np.float32)
    return cv2.resize(small, (geo.size, geo.size), interpolation=cv2.INTER_LINEAR)


def _fov_mask(geo: Geometry) -> np.ndarray:
    """The circular aperture: 1 inside, 0 outside, a one-pixel soft edge."""
    m = np.zeros((geo.size, geo.size), np.uint8)
    c = (round(geo.centre[0] * 16), round(geo.centre[1] * 16))
    cv2.circle(m, c, round(geo.radius * 16), 255, -1, cv2.LINE_AA, shift=4)
    return m.astype(np.float32) / 255.0


def generate(
    n: int, seed: int, size: int = 1024, defect_rate: float = 0.2, **kw: Any
) -> Iterator[FundusSample]:
    """Samples 0..n-1 of one seed (the same as calling generate_sample for each index)."""
    if n < 0:
        raise EdgewardError(f"fundus generator: n {n} must be >= 0")
    for i in range(n):
        yield generate_sample(seed, i, size=size, defect_rate=defect_rate, **kw)
