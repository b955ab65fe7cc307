"""The quality gate: classical image measures plus the edge quality net.

Each classical measure is a small `QualityCheck` in a registry: it measures one number on a
normalised view of the scan and the base class turns it into a finding with plain advice.
Thresholds were calibrated on the synthetic generator's output (see benchmarks/edge_pipeline.py
`calibrate`): `reject` bounds sit where reject-class defects fall, `warn` bounds where usable ones
do. A `reject` finding means retake; a `warn` finding only forbids a confident all-clear.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import cv2
import numpy as np

ANALYSIS_SIZE = 512  # every measure is taken at this size, so thresholds do not depend on input
Severity = Literal["reject", "warn"]


@dataclass(frozen=True)
class FovGeometry:
    """The fitted field-of-view circle, in the analysis frame (longest side ANALYSIS_SIZE)."""

    found: bool
    cx: float = 0.0
    cy: float = 0.0
    radius: float = 0.0
    fit_error: float = 1.0  # RMS distance of the rim from the circle, as a fraction of radius
    fill: float = 0.0  # bright area / circle area inside the frame (holes, odd shapes < 1)
    in_frame: float = 0.0  # fraction of the circle inside the frame (cut-off FOV < 1)
    offset: float = 1.0  # centre distance from the frame centre, as a fraction of radius
    size: float = 0.0  # radius / half the shorter frame side


@dataclass
class QualityView:
    """The scan prepared once for every check."""

    frame: np.ndarray  # whole frame, BGR, longest side ANALYSIS_SIZE
    fov: FovGeometry
    crop: np.ndarray  # square crop around the FOV circle, ANALYSIS_SIZE x ANALYSIS_SIZE BGR
    mask: np.ndarray  # bool, FOV pixels in `crop`
    inner: np.ndarray  # bool, FOV pixels away from the rim (edge of the circle is not detail)


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    severity: Severity
    value: float


def _fit_circle(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float, float]:
    """Least-squares (Kasa) circle through rim points: centre, radius, RMS error / radius."""
    a = np.column_stack([xs, ys, np.ones_like(xs)])
    b = xs**2 + ys**2
    (c0, c1, c2), *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = c0 / 2, c1 / 2
    r = float(np.sqrt(max(c2 + cx**2 + cy**2, 1e-9)))
    err = float(np.sqrt(np.mean((np.hypot(xs - cx, ys - cy) - r) ** 2)) / r)
    return float(cx), float(cy), r, err


def find_fov(frame: np.ndarray) -> tuple[FovGeometry, np.ndarray]:
    """Fit a circle to the rim of the bright region; rim points on the frame border are ignored."""
    brightness = frame.max(axis=2)
    top = float(np.percentile(brightness, 99))
    # Adaptive: an under-exposed FOV may sit below the usual threshold of 20 grey levels.
    threshold = max(6.0, min(20.0, 0.3 * top))
    mask = (brightness > threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    h, w = mask.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return FovGeometry(False), np.zeros_like(mask, bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = labels == largest
    if region.sum() < 0.05 * h * w:
        return FovGeometry(False), region
    # Fill holes (dark lesions, vessels at the rim) so the contour is the outer rim only.
    contours, _ = cv2.findContours(
        region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    rim = max(contours, key=cv2.contourArea)[:, 0, :].astype(np.float64)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, [rim.astype(np.int32)], -1, 1, thickness=cv2.FILLED)
    away = (rim[:, 0] > 1) & (rim[:, 0] < w - 2) & (rim[:, 1] > 1) & (rim[:, 1] < h - 2)
    if away.sum() < 20:  # the bright region fills the frame: no rim, so no circle
        return FovGeometry(False, fill=float(region.mean())), region
    cx, cy, r, err = _fit_circle(rim[away, 0], rim[away, 1])
    yy, xx = np.mgrid[0:h, 0:w]
    circle = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    circle_area = np.pi * r * r
    in_frame = float(circle.sum() / circle_area) if circle_area > 0 else 0.0
    fill = float((region & circle).sum() / max(circle.sum(), 1))
    spill = float((region & ~circle).sum() / max(region.sum(), 1))
    geometry = FovGeometry(
        found=True,
        cx=cx,
        cy=cy,
        radius=r,
        fit_error=err + spill,
        fill=fill,
        in_frame=min(in_frame, 1.0),
        offset=float(np.hypot(cx - w / 2, cy - h / 2) / r),
        size=float(r / (min(h, w) / 2)),
    )
    return geometry, filled.astype(bool) & circle


def analysis_view(image_bgr: np.ndarray) -> QualityView:
    """Downscale once, find the FOV, crop a square around its circle."""
    h, w = image_bgr.shape[:2]
    scale = ANALYSIS_SIZE / max(h, w)
    frame = cv2.resize(
        image_bgr,
        (max(1, round(w * scale)), max(1, round(h * scale))),
        interpolation=cv2.INTER_AREA,
    )
    fov, region = find_fov(frame)
    if fov.found:
        r = int(np.ceil(fov.radius))
        x0, y0 = round(fov.cx) - r, round(fov.cy) - r
        pad = max(0, -x0, -y0, x0 + 2 * r - frame.shape[1], y0 + 2 * r - frame.shape[0])
        padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        padded_mask = np.pad(region, pad).astype(np.uint8)
        crop = padded[y0 + pad : y0 + pad + 2 * r, x0 + pad : x0 + pad + 2 * r]
        crop_mask = padded_mask[y0 + pad : y0 + pad + 2 * r, x0 + pad : x0 + pad + 2 * r]
    else:
        crop, crop_mask = frame, region.astype(np.uint8)
    size = (ANALYSIS_SIZE, ANALYSIS_SIZE)
    crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(crop_mask, size, interpolation=cv2.INTER_NEAREST).astype(bool)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    if inner.sum() < 100:
        inner = mask if mask.sum() >= 100 else np.ones(size, bool)
    return QualityView(frame, fov, crop, mask, inner)


# ---- the checks ----

CHECKS: dict[str, type[QualityCheck]] = {}


def register(cls: type[QualityCheck]) -> type[QualityCheck]:
    """Add a check to the gate; a duplicate name is a programming error."""
    if cls.name in CHECKS:
        raise ValueError(f"quality check {cls.name!r} is already registered by {CHECKS[cls.name]}")
    CHECKS[cls.name] = cls
    return cls


class QualityCheck(ABC):
    """Measure one number; values beyond the bounds become findings with plain advice."""

    name: ClassVar[str]
    # (reject, warn) bounds; None where the measure has no bound on that side.
    low: ClassVar[tuple[float | None, float | None]] = (None, None)
    high: ClassVar[tuple[float | None, float | None]] = (None, None)
    low_code: ClassVar[str] = ""
    low_advice: ClassVar[str] = ""
    high_code: ClassVar[str] = ""
    high_advice: ClassVar[str] = ""

    @abstractmethod
    def measure(self, view: QualityView) -> float: ...

    def evaluate(self, view: QualityView) -> Finding | None:
        return self.judge(self.measure(view))

    def judge(self, value: float) -> Finding | None:
        """Compare a measured value with the bounds, reject bounds first."""
        for severity, index in (("reject", 0), ("warn", 1)):
            low, high = self.low[index], self.high[index]
            if low is not None and value < low:
                return Finding(self.low_code, self.low_advice, severity, value)  # type: ignore[arg-type]
            if high is not None and value > high:
                return Finding(self.high_code, self.high_advice, severity, value)  # type: ignore[arg-type]
        return None


def _luma(view: QualityView) -> np.ndarray:
    return cv2.cvtColor(view.crop, cv2.COLOR_BGR2GRAY).astype(np.float32)


@register
class SharpnessCheck(QualityCheck):
    """Variance of the Laplacian of the green channel (vessels live there), inside the FOV."""

    name = "sharpness"
    low = (12.0, 25.0)
    low_code = "blur"
    low_advice = "out of focus — refocus and retake"

    def measure(self, view: QualityView) -> float:
        green = cv2.GaussianBlur(view.crop[:, :, 1], (3, 3), 0).astype(np.float32)
        lap = cv2.Laplacian(green, cv2.CV_32F, ksize=3)
        return float(lap[view.inner].var())


@register
class DarknessCheck(QualityCheck):
    """Mean brightness inside the FOV."""

    name = "exposure_mean"
    low = (25.0, 40.0)
    high = (215.0, 190.0)
    low_code = "underexposed"
    low_advice = "too dark — increase the flash or exposure and retake"
    high_code = "overexposed"
    high_advice = "too bright — reduce the flash or exposure and retake"

    def measure(self, view: QualityView) -> float:
        return float(_luma(view)[view.inner].mean())


@register
class ClippingCheck(QualityCheck):
    """Fraction of FOV pixels burnt out at white (detail lost for good)."""

    name = "exposure_clipped"
    high = (0.25, 0.10)
    high_code = "overexposed"
    high_advice = "parts of the image are burnt out white — reduce the flash and retake"

    def measure(self, view: QualityView) -> float:
        return float((view.crop[view.inner].max(axis=1) >= 250).mean())


@register
class IlluminationCheck(QualityCheck):
    """Ratio of the dimmest to the brightest region of the smoothed illumination field."""

    name = "illumination"
    low = (0.25, 0.40)
    low_code = "uneven_illumination"
    low_advice = "unevenly lit — align the camera with the pupil (or dilate) and retake"

    def measure(self, view: QualityView) -> float:
        small = cv2.resize(_luma(view), (64, 64), interpolation=cv2.INTER_AREA)
        inner = cv2.resize(view.inner.astype(np.uint8), (64, 64), interpolation=cv2.INTER_NEAREST)
        field = cv2.GaussianBlur(small, (0, 0), 4)[inner.astype(bool)]
        if field.size == 0:
            return 0.0
        lo, hi = np.percentile(field, [5, 95])
        return float(lo / max(hi, 1.0))


@register
class ContrastCheck(QualityCheck):
    """Local (detail) contrast of the green channel relative to its brightness: haze lowers it."""

    name = "contrast"
    low = (0.025, 0.04)
    low_code = "low_contrast"
    low_advice = "hazy, low contrast — clean the lens, check for flare or media opacity and retake"

    def measure(self, view: QualityView) -> float:
        green = view.crop[:, :, 1].astype(np.float32)
        background = cv2.GaussianBlur(green, (0, 0), 8)
        detail = (green - background)[view.inner]
        return float(detail.std() / max(float(green[view.inner].mean()), 1.0))


class FieldOfViewCheck(QualityCheck):
    """The circular fundus field: present, round, inside the frame and centred."""

    name = "field_of_view"
    # Bounds on the FovGeometry fields, as (reject, warn).
    min_fill = (0.70, 0.85)
    min_in_frame = (0.75, 0.90)
    max_offset = (0.45, 0.25)
    max_fit_error = (0.20, 0.10)
    min_size = (0.35, 0.50)

    def measure(self, view: QualityView) -> float:
        return view.fov.fill

    def evaluate(self, view: QualityView) -> Finding | None:
        fov = view.fov
        if not fov.found or fov.fit_error > self.max_fit_error[0] or fov.size < self.min_size[0]:
            return Finding(
                "fov_missing",
                "no circular fundus field of view found — this does not look like a fundus "
                "photograph; check the camera is on the eye and retake",
                "reject",
                fov.fit_error,
            )
        for index, severity in ((0, "reject"), (1, "warn")):
            if fov.in_frame < self.min_in_frame[index] or fov.offset > self.max_offset[index]:
                return Finding(
                    "fov_off_centre",
                    "the field of view is cut off or off-centre — centre the pupil and retake",
                    severity,  # type: ignore[arg-type]
                    fov.offset,
                )
            if fov.fill < self.min_fill[index]:
                return Finding(
                    "occlusion",
                    "part of the field of view is blocked (eyelid, eyelashes or shadow) — "
                    "ask the patient to open wide and retake",
                    severity,  # type: ignore[arg-type]
                    fov.fill,
                )
        if fov.fit_error > self.max_fit_error[1] or fov.size < self.min_size[1]:
            return Finding(
                "fov_shape",
                "the field of view is not a clear circle — check the camera alignment",
                "warn",
                fov.fit_error,
            )
        return None


register(FieldOfViewCheck)


@dataclass
class QualityReport:
    findings: list[Finding]
    measures: dict[str, float]
    fov: FovGeometry

    @property
    def rejects(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "reject"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warn"]


def assess(
    image_bgr: np.ndarray, checks: dict[str, type[QualityCheck]] | None = None
) -> QualityReport:
    """Run every registered check on one decoded scan."""
    view = analysis_view(image_bgr)
    findings: list[Finding] = []
    measures: dict[str, float] = {}
    fov_check = FieldOfViewCheck()
    fov_finding = fov_check.evaluate(view)
    measures.update(
        fov_fill=view.fov.fill, fov_in_frame=view.fov.in_frame, fov_offset=view.fov.offset
    )
    measures.update(fov_fit_error=view.fov.fit_error, fov_size=view.fov.size)
    if fov_finding is not None:
        findings.append(fov_finding)
        if fov_finding.code == "fov_missing":
            # Without a fundus field the other measures describe something else: skip them.
            return QualityReport(findings, measures, view.fov)
    for name, cls in (checks or CHECKS).items():
        if cls is FieldOfViewCheck:
            continue
        check = cls()
        measures[name] = check.measure(view)
        finding = check.judge(measures[name])
        if finding is not None and finding.code not in {f.code for f in findings}:
            findings.append(finding)
    return QualityReport(findings, measures, view.fov)
