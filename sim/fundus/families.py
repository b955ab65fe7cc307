"""Camera families: how real fundus cameras frame, expose and store a retina the twin renders.

The twin's renders are square, evenly exposed and stored losslessly. Real clinic photographs are
not: the field covers 30-55 degrees, frames run from 565 to 5,000 px and are rarely square, the
field is circular, notched (a marker at the rim) or cut at the top and bottom, the flash is
brighter in the middle than at the rim, a central reflex and a thin veil (tear film, lens) lower
the detail contrast, colour balance differs by maker (most render the fundus more
orange-yellow than the twin's red-brown), and the file is a JPEG at the clinic's
quality with text burned into the corner. `photograph` applies one family's acquisition to a
generated sample; the labels (grade, referability) are unchanged, since only the acquisition
differs. Frames, fields and JPEG levels follow the cameras' published specifications; exposure,
veil and colour balance were set by judgement, in the direction the realism report
(`sim/fundus/realism.py`) showed the twin to be off. No real photograph's pixels are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from shared.errors import EdgewardError
from sim.fundus.cameras import camera_profile

Field = Literal["circular", "notched", "cropped"]


@dataclass(frozen=True)
class CameraFamily:
    name: str
    width: int  # frame, px
    height: int
    field_deg: float  # angle of view: a narrower field magnifies the retina
    field: Field
    field_fill: float  # field diameter / frame height (> 1 when cut at the top and bottom)
    exposure: float  # flash gain on the rendered values (real flashes are set bright)
    veil: float  # share of each pixel replaced by the field's mean colour (haze, tear film)
    reflex: float  # brightness of the central (foveal/lens) reflex
    falloff: float  # flash fall-off towards the rim, beyond the render's vignette
    cast_bgr: tuple[float, float, float]  # white balance of the maker
    noise: float  # sensor noise std on 0..1 values
    jpeg_quality: int | None  # None: stored losslessly (TIFF/PNG)
    text: bool  # date or patient text burned into a corner

    def __post_init__(self) -> None:
        if not 30.0 <= self.field_deg <= 60.0:
            raise EdgewardError(f"camera family {self.name}: field {self.field_deg} deg not 30-60")
        if not 400 <= max(self.width, self.height) <= 5000:
            raise EdgewardError(f"camera family {self.name}: frame {self.width} px not 400-5000")


# Exposure and veil were 1.35-1.55 and 0.40-0.55 while the twin rendered dark and brown (generator
# 1.3.0). On the brighter, smoother renderer 1.4.0 they overexposed and hazed every family
# photograph (realism report, 40 `--family all` scans vs the 53 real dev photographs: exposure
# 154 vs 114, contrast 0.052 vs 0.070); at 0.95-1.10 and 0.12-0.25: exposure 115, contrast 0.077.
FAMILIES: dict[str, CameraFamily] = {
    f.name: f
    for f in (
        # 45-degree desktop camera, small frame (a 2000s screening programme's JPEGs)
        CameraFamily(
            "desk45-small", 565, 584, 45, "circular", 0.93, 1.10, 0.15, 0.10, 0.25,
            (1.30, 1.05, 1.00), 0.016, 85, False,
        ),
        # 45-degree desktop camera, 3:2 DSLR frame, the field notched at the rim
        CameraFamily(
            "desk45-dslr", 3504, 2336, 45, "notched", 0.95, 1.05, 0.12, 0.08, 0.20,
            (1.20, 1.00, 1.00), 0.010, None, False,
        ),
        # 30-degree field (paediatric/population study), near-square frame
        CameraFamily(
            "desk30", 999, 960, 30, "circular", 0.97, 1.00, 0.20, 0.16, 0.30,
            (1.10, 1.00, 1.02), 0.018, 90, True,
        ),
        # 50-degree camera whose field is cut at the top and bottom of a wide frame
        CameraFamily(
            "wide50-cropped", 2000, 1312, 50, "cropped", 1.12, 1.10, 0.12, 0.06, 0.22,
            (1.40, 1.10, 0.98), 0.014, 92, True,
        ),
        # handheld 40-degree camera: noisier, stronger fall-off, lower JPEG quality
        CameraFamily(
            "handheld40", 1411, 1411, 40, "circular", 0.90, 0.95, 0.25, 0.12, 0.40,
            (1.00, 1.05, 1.05), 0.028, 75, False,
        ),
    )
}  # fmt: skip
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def family(name: str) -> CameraFamily:
    if name not in FAMILIES:
        raise EdgewardError(f"unknown camera family {name!r}; known: {', '.join(FAMILY_NAMES)}")
    return FAMILIES[name]


def _field_mask(fam: CameraFamily, centre: tuple[float, float], radius: float) -> np.ndarray:
    mask = np.zeros((fam.height, fam.width), np.uint8)
    c = (round(centre[0] * 16), round(centre[1] * 16))
    cv2.circle(mask, c, round(radius * 16), 255, -1, cv2.LINE_AA, shift=4)
    if fam.field == "notched":  # a small square marker cut into the rim, as some makers do
        side = max(2, round(0.05 * radius))
        x, y = round(centre[0]), round(centre[1] - radius)
        mask[max(0, y - side) : y + side, x - side : x + side] = 0
    return mask.astype(np.float32) / 255.0


def _lighting(fam: CameraFamily, centre: tuple[float, float], radius: float) -> np.ndarray:
    """Flash gain with fall-off plus the warm-white central reflex (smooth: made at 1/8 size)."""
    f = 8
    h, w = max(2, fam.height // f), max(2, fam.width // f)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) * f
    d2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2
    gain = fam.exposure * (1.0 - fam.falloff * np.clip(d2 / max(radius, 1.0) ** 2, 0, 1) ** 1.5)
    glint = fam.reflex * np.exp(-d2 / (2 * (0.12 * radius) ** 2))
    small = gain[..., None] + glint[..., None] * np.array([0.6, 0.85, 1.0], np.float32)
    # multiplicative: the reflex brightens the fundus under it rather than painting over it
    size = (fam.width, fam.height)
    full = cv2.resize(small.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    return np.asarray(full, np.float32)


def photograph(
    image_bgr: np.ndarray, camera: str, fam: CameraFamily, rng: np.random.Generator
) -> np.ndarray:
    """The twin's square render (made with `camera`), as `fam` would frame and store it."""
    size = image_bgr.shape[0]
    # A narrower field shows less retina over the same sensor: crop the render's centre.
    # A wider field than the render's 45 degrees cannot show retina the render does not have:
    # it is approximated by the render at a smaller scale.
    zoom = max(1.0, 45.0 / fam.field_deg)
    render_r = size / 2 * camera_profile(camera).fov_ratio
    keep = min(size, max(16, round(2 * render_r / zoom)))
    o = (size - keep) // 2
    retina = image_bgr[o : o + keep, o : o + keep].astype(np.float32) / 255.0
    radius = fam.field_fill * fam.height / 2
    side = max(2, round(2 * radius * keep / (2 * render_r / zoom)))
    retina = np.asarray(cv2.resize(retina, (side, side), interpolation=cv2.INTER_AREA))
    frame = np.zeros((fam.height, fam.width, 3), np.float32)
    cx = fam.width / 2 + rng.normal(0, 0.01) * fam.width
    cy = fam.height / 2 + rng.normal(0, 0.01) * fam.height
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(fam.width, x0 + side), min(fam.height, y0 + side)
    frame[fy0:fy1, fx0:fx1] = retina[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    mask = _field_mask(fam, (cx, cy), min(radius, side / 2))
    lit = mask > 0.5
    if lit.any():
        mean = frame[lit].mean(axis=0)
        frame = np.asarray(frame * (1.0 - fam.veil) + mean * fam.veil, np.float32)
    frame *= _lighting(fam, (cx, cy), radius)
    frame *= np.asarray(fam.cast_bgr, np.float32)
    frame += rng.standard_normal(frame.shape[:2], dtype=np.float32)[..., None] * fam.noise
    out = cv2.convertScaleAbs(frame * mask[..., None], alpha=255.0)
    if fam.text:
        cv2.putText(
            out,
            "2026-12-06 OD",
            (round(0.02 * fam.width), round(0.97 * fam.height)),
            cv2.FONT_HERSHEY_SIMPLEX,
            fam.height / 900,
            (235, 235, 235),
            max(1, round(fam.height / 500)),
            cv2.LINE_AA,
        )
    if fam.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, fam.jpeg_quality])
        if not ok:
            raise EdgewardError(f"camera family {fam.name}: JPEG encoding failed")
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


# The family held out of the training split: validation and test see it, so temperature scaling
# and the OOD thresholds are fitted on a camera the nets were not trained on (a shifted family).
HELD_OUT_FAMILY = "handheld40"
JPEG_LEVELS = (None, 70, 75, 80, 85, 90, 95)
FIELDS: tuple[Field, ...] = ("circular", "notched", "cropped")


def randomised(base: CameraFamily, rng: np.random.Generator, frame_max: int) -> CameraFamily:
    """A camera like `base` with its settings drawn around it, its frame `frame_max` px long.

    Training data draws one per scan (domain randomisation): the same maker's cameras differ in
    flash setting, white balance, haze of the eye in front of them, field shape and the clinic's
    JPEG level, so the nets must learn the retina rather than one family's look. The ranges span
    the named families and a margin around them. The frame is scaled to `frame_max` (resolution
    565-5,000 px is then a matter of how much detail the render carries, which is fixed).
    """
    aspect = base.width / base.height
    field: Field = FIELDS[int(rng.integers(len(FIELDS)))]
    # wide-frame cameras often cut a quarter of the circle's height away (top and bottom)
    fill = float(rng.uniform(1.05, 1.3)) if field == "cropped" else float(rng.uniform(0.85, 0.98))
    if aspect < 1.2 and field == "cropped":  # a near-square frame is not cut at top and bottom
        fill = float(rng.uniform(0.9, 0.98))
    height = round(frame_max / max(aspect, 1.0))
    # makers differ most in how much green they keep (yellow-orange vs red-brown fundi)
    cast = np.asarray(base.cast_bgr) * rng.uniform((0.85, 0.9, 0.85), (1.2, 1.35, 1.1))
    return CameraFamily(
        name=base.name,
        # rounding must not take a frame below the families' 400 px floor
        width=max(400, round(height * aspect)),
        height=max(400 if aspect < 1.0 else 1, height),
        field_deg=float(np.clip(base.field_deg + rng.uniform(-8, 8), 30.0, 55.0)),
        field=field,
        field_fill=fill,
        exposure=float(base.exposure * rng.uniform(0.8, 1.15)),
        veil=float(np.clip(base.veil + rng.uniform(-0.1, 0.1), 0.05, 0.4)),
        reflex=float(rng.uniform(0.0, 0.2)),
        falloff=float(np.clip(base.falloff + rng.uniform(-0.15, 0.15), 0.05, 0.5)),
        cast_bgr=(float(cast[0]), float(cast[1]), float(cast[2])),
        noise=float(rng.uniform(0.004, 0.03)),
        jpeg_quality=JPEG_LEVELS[int(rng.integers(len(JPEG_LEVELS)))],
        text=bool(rng.random() < 0.4),
    )
