"""Simulated fundus camera models and pigmentation: the colour variation of a clinic fleet."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class CameraProfile:
    """How one camera model renders the same retina (colour, optics, field of view, noise)."""

    name: str
    manufacturer: str
    model: str
    gains_bgr: tuple[float, float, float]  # white balance
    gamma: float  # tone curve exponent on 0..1 values
    saturation: float  # 1 = as rendered, < 1 greyer
    vignette: float  # darkening at the FOV edge, 0..1
    fov_ratio: float  # FOV radius / half the image side
    noise: float  # sensor noise std on 0..1 values
    softness: float  # optical blur sigma as a fraction of the FOV radius
    field_deg: float  # horizontal field of view, written to DICOM


# The fleet the models are trained on.
_TRAINING_FLEET = (
    CameraProfile(
        "topcon-nw8",
        "TOPCON",
        "TRC-NW8",
        (0.95, 1.0, 1.04),
        1.0,
        1.0,
        0.35,
        0.93,
        0.012,
        0.0015,
        45.0,
    ),
    CameraProfile(
        "canon-cr2",
        "Canon",
        "CR-2 AF",
        (0.85, 0.95, 1.08),
        0.9,
        1.1,
        0.30,
        0.95,
        0.010,
        0.0010,
        45.0,
    ),
    CameraProfile(
        "zeiss-visucam",
        "Carl Zeiss Meditec",
        "VISUCAM 500",
        (1.05, 1.04, 0.96),
        1.1,
        0.9,
        0.40,
        0.91,
        0.014,
        0.0020,
        45.0,
    ),
    CameraProfile(
        "centervue-drs",
        "CenterVue",
        "DRS",
        (1.18, 1.08, 0.90),
        1.05,
        0.8,
        0.45,
        0.96,
        0.016,
        0.0025,
        45.0,
    ),
)
# Cameras that only appear in shift scenarios (a clinic buys a handheld device).
_UNSEEN = (
    CameraProfile(
        "optomed-aurora",
        "Optomed",
        "Aurora",
        (1.12, 1.15, 0.88),
        1.2,
        0.85,
        0.6,
        0.88,
        0.022,
        0.0035,
        50.0,
    ),
)
PROFILES: dict[str, CameraProfile] = {c.name: c for c in _TRAINING_FLEET + _UNSEEN}
CAMERAS: tuple[str, ...] = tuple(c.name for c in _TRAINING_FLEET)
UNSEEN_CAMERAS: tuple[str, ...] = tuple(c.name for c in _UNSEEN)


def camera_profile(name: str) -> CameraProfile:
    """The profile of a known camera, or a stable made-up one for any other name (shift tests)."""
    if name in PROFILES:
        return PROFILES[name]
    h = hashlib.sha256(name.encode()).digest()
    u = [b / 255.0 for b in h[:8]]
    return CameraProfile(
        name,
        "Unknown",
        name,
        (0.8 + 0.4 * u[0], 0.85 + 0.3 * u[1], 0.8 + 0.4 * u[2]),
        0.85 + 0.4 * u[3],
        0.75 + 0.4 * u[4],
        0.25 + 0.4 * u[5],
        0.86 + 0.1 * u[6],
        0.008 + 0.016 * u[7],
        0.002,
        45.0,
    )


@dataclass(frozen=True)
class Pigmentation:
    """Fundus reflectance by pigmentation: lighter fundi show the choroidal pattern."""

    name: str
    base_bgr: tuple[float, float, float]  # mid-periphery reflectance, 0..1
    choroid: float  # visibility of choroidal vessels (tigroid pattern)
    disc_contrast: float  # how much the disc stands out


PIGMENTS: dict[str, Pigmentation] = {
    p.name: p
    for p in (
        # Brighter and more orange than before (was light 0.22/0.40/0.86, medium 0.13/0.29/0.70,
        # dark 0.08/0.19/0.50): the twin's field mean was R 125 G 55 B 23 against real R 195 G 91
        # B 55 (realism report medians); dark fundi stay darker and browner than light ones.
        Pigmentation("light", (0.30, 0.58, 1.1), 0.45, 1.0),
        Pigmentation("medium", (0.22, 0.45, 1.0), 0.22, 0.95),
        Pigmentation("dark", (0.13, 0.30, 0.75), 0.06, 0.85),
    )
}
PIGMENTATIONS: tuple[str, ...] = tuple(PIGMENTS)
