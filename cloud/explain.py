"""Grad-CAM presentation: the overlay PNG and the hot regions mapped back to scan pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from shared.preprocess import PreprocessSpec, fov_box, square_crop


@dataclass(frozen=True)
class ViewGeometry:
    """Where the model's square view sits in the original scan: view pixel (u, v) is
    original pixel (x0 + u * sx, y0 + v * sy). Mirrors `shared.preprocess.resize_for_model`."""

    x0: float
    y0: float
    sx: float
    sy: float
    width: int
    height: int

    def to_original(self, u: float, v: float) -> tuple[float, float]:
        return self.x0 + u * self.sx, self.y0 + v * self.sy


@dataclass(frozen=True)
class HotRegion:
    """A hot area of the CAM as a box in original scan pixels; score = its share of CAM mass."""

    x: int
    y: int
    width: int
    height: int
    score: float


def _geometry(
    box: tuple[int, int, int, int] | None, width: int, height: int, spec: PreprocessSpec
) -> ViewGeometry:
    if box is None:
        return ViewGeometry(0, 0, width / spec.size, height / spec.size, width, height)
    x, y, w, h = box
    side = max(w, h)  # shared.preprocess.square_crop's square around the box centre
    x0, y0 = x + w // 2 - side // 2, y + h // 2 - side // 2
    return ViewGeometry(x0, y0, side / spec.size, side / spec.size, width, height)


def view_geometry(image_bgr: np.ndarray, spec: PreprocessSpec) -> ViewGeometry:
    height, width = image_bgr.shape[:2]
    box = None
    if spec.crop_to_fov:
        img = image_bgr if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        box = fov_box(img, spec.fov_threshold)
    return _geometry(box, width, height, spec)


def model_view(image_bgr: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, ViewGeometry]:
    """`shared.preprocess.resize_for_model` and `view_geometry` from ONE field-of-view search.

    The search is the costly step on a full-size scan; doing it twice (once for the model's
    view, once to map the CAM back) cost as much as the whole ONNX forward pass.
    """
    img = image_bgr if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    height, width = img.shape[:2]
    box = fov_box(img, spec.fov_threshold) if spec.crop_to_fov else None
    if box is not None:
        img = square_crop(img, box)
    view = cv2.resize(img, (spec.size, spec.size), interpolation=cv2.INTER_AREA)
    return view, _geometry(box, width, height, spec)


def to_model_view(array: np.ndarray, geometry: ViewGeometry, size: int) -> np.ndarray:
    """Crop/pad and resize an array aligned with the original scan (e.g. a lesion mask)."""
    x0, y0 = geometry.x0, geometry.y0
    corners = [[x0, y0], [x0 + size * geometry.sx, y0], [x0, y0 + size * geometry.sy]]
    src = np.array(corners, dtype=np.float32)
    dst = np.array([[0, 0], [size, 0], [0, size]], dtype=np.float32)
    matrix = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(
        array, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT
    )


def overlay_png(view_bgr: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> bytes:
    """The CAM (0-1, view size) as a JET colour overlay on the model's view, PNG-encoded."""
    heat = cv2.applyColorMap(np.uint8(255 * np.clip(cam, 0, 1)), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(view_bgr, 1 - alpha, heat, alpha, 0)
    ok, buf = cv2.imencode(".png", blended)
    if not ok:
        raise RuntimeError("OpenCV could not encode the Grad-CAM overlay as PNG")
    return buf.tobytes()


def hot_regions(
    cam: np.ndarray, geometry: ViewGeometry, top_k: int = 3, level: float = 0.5
) -> list[HotRegion]:
    """Connected areas of the CAM above `level` of its peak, largest CAM mass first."""
    total = float(cam.sum())
    if total <= 0 or float(cam.max()) <= 0:
        return []
    hot = (cam >= level * float(cam.max())).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    found: list[HotRegion] = []
    for label in range(1, count):
        u, v, w, h = (int(s) for s in stats[label, :4])
        mass = float(cam[labels == label].sum()) / total
        x0, y0 = geometry.to_original(u, v)
        x1, y1 = geometry.to_original(u + w, v + h)
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(geometry.width), x1), min(float(geometry.height), y1)
        if x1 <= x0 or y1 <= y0:
            continue
        found.append(HotRegion(round(x0), round(y0), round(x1 - x0), round(y1 - y0), mass))
    found.sort(key=lambda r: r.score, reverse=True)
    return found[:top_k]


def mass_on_mask(cam: np.ndarray, mask: np.ndarray, within: np.ndarray | None = None) -> float:
    """Share of CAM mass on `mask` divided by the mask's share of the area (1.0 = chance)."""
    region = np.ones_like(mask, dtype=bool) if within is None else within.astype(bool)
    on = mask.astype(bool) & region
    area_share = on.sum() / max(region.sum(), 1)
    cam_in = np.where(region, cam, 0.0)
    total = float(cam_in.sum())
    if total <= 0 or area_share <= 0:
        return 0.0
    return float(cam_in[on].sum() / total / area_share)
