"""Cameras over each approach: rectified top-down frames of the last ~60 m, and the truth.

A frame is drawn in lane coordinates: the stop line is the top row, upstream is down, the
rightmost lane is on the right. Drawing in lane coordinates keeps curved and split approaches
(a turn lane opening) simple and makes the frame look the same on any network.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from sim.traffic.faults import FaultSchedule
from sim.traffic.network import CAMERA_RANGE_M, Approach, Junction

CONDITIONS = ("day", "night", "rain", "glare")
HALTING_SPEED = 0.1  # m/s, SUMO's own threshold for a halting vehicle


@dataclass(frozen=True)
class VehicleState:
    lane_id: str
    pos_m: float  # front bumper position along the lane
    speed: float
    length_m: float
    width_m: float
    colour: tuple[int, int, int]  # RGB, as SUMO reports it
    lat_m: float = 0.0


@dataclass(frozen=True)
class ApproachTruth:
    """What the counter should say: halting vehicles and moving vehicles in the view."""

    queue: int
    approaching: int


@dataclass(frozen=True)
class CameraFrame:
    junction_id: str
    approach_id: str
    time: float
    image: np.ndarray | None  # HxWx3 uint8 BGR; None when the frame was dropped
    truth: ApproachTruth
    condition: str
    fault: str | None = None


@dataclass(frozen=True)
class _Placed:
    dist_m: float  # front bumper distance to the stop line
    slot: int
    vehicle: VehicleState


def in_view(approach: Approach, vehicles: Iterable[VehicleState], range_m: float) -> list[_Placed]:
    """Vehicles whose front is within `range_m` of the stop line on the approach's lanes."""
    lanes = {lane.lane_id: lane for lane in approach.lanes}
    out = []
    for v in vehicles:
        lane = lanes.get(v.lane_id)
        if lane is None:
            continue
        dist = lane.offset_m + max(0.0, lane.length_m - v.pos_m)
        if dist <= range_m:
            out.append(_Placed(dist, lane.slot, v))
    return out


def truth_of(placed: Iterable[_Placed]) -> ApproachTruth:
    q = a = 0
    for p in placed:
        if p.vehicle.speed < HALTING_SPEED:
            q += 1
        else:
            a += 1
    return ApproachTruth(q, a)


class CameraRenderer:
    """Renders every approach camera of a network; applies camera faults from the schedule."""

    def __init__(
        self,
        junctions: Iterable[Junction],
        *,
        size: int = 96,
        range_m: float = CAMERA_RANGE_M,
        seed: int = 0,
        faults: FaultSchedule | None = None,
        condition: str = "day",
    ) -> None:
        if condition not in CONDITIONS:
            raise ValueError(f"camera condition {condition!r} is unknown; use one of {CONDITIONS}")
        self.junctions = {j.junction_id: j for j in junctions}
        self.size = size
        self.range_m = range_m
        self.faults = faults or FaultSchedule()
        self.condition = condition
        self._rng = np.random.default_rng(seed)
        self._background: dict[tuple[str, str], np.ndarray] = {}
        self._last: dict[tuple[str, str], np.ndarray] = {}
        self.vehicles: list[VehicleState] = []
        self._by_lane: dict[str, list[VehicleState]] = {}
        # Sensor noise comes from windows into one pre-drawn field: drawing fresh Gaussian
        # noise for every frame cost more than everything else in a render.
        self._noise = self._rng.standard_normal((2 * size, 2 * size, 3)).astype(np.float32)

    def observe(self, vehicles: list[VehicleState]) -> None:
        """The latest vehicle states (the harness feeds them each step the camera is used)."""
        self.vehicles = vehicles
        self._by_lane = {}
        for v in vehicles:
            self._by_lane.setdefault(v.lane_id, []).append(v)

    def render(
        self, junction_id: str, approach_id: str, t: float, condition: str | None = None
    ) -> CameraFrame:
        junction = self.junctions[junction_id]
        approach = junction.approach(approach_id)
        nearby = [v for lane in approach.lanes for v in self._by_lane.get(lane.lane_id, ())]
        placed = in_view(approach, nearby, self.range_m)
        truth = truth_of(placed)
        cond = condition or self.condition
        key = (junction_id, approach.approach_id)
        fault = self.faults.camera_fault(t, junction_id, (approach.approach_id, approach.edge_id))
        if fault == "frozen" and key in self._last:
            img: np.ndarray | None = self._last[key].copy()
        elif fault == "dropped":
            img = None
        else:
            img = self._draw(key, approach, placed, cond)
            if fault is None or fault == "frozen":
                self._last[key] = img
            if fault is not None and fault != "frozen":
                img = apply_fault(img, fault, self._rng)
        return CameraFrame(junction_id, approach.approach_id, t, img, truth, cond, fault)

    def render_all(self, t: float) -> list[CameraFrame]:
        return [
            self.render(j.junction_id, a.approach_id, t)
            for j in self.junctions.values()
            for a in j.approaches
        ]

    # drawing ------------------------------------------------------------------------------

    def _geometry(self, approach: Approach) -> tuple[float, float, float]:
        """(pixels per metre along, lane width in px, x of the road's right edge)."""
        s = self.size
        along = s / self.range_m
        lane_px = min(s * 0.22, (s - 16) / approach.n_slots)
        right = s / 2 + lane_px * approach.n_slots / 2
        return along, lane_px, right

    def _draw(
        self, key: tuple[str, str], approach: Approach, placed: list[_Placed], cond: str
    ) -> np.ndarray:
        bg = self._background.get(key)
        if bg is None:
            bg = self._background[key] = self._road(approach, key)
        img = bg.copy()
        along, lane_px, right = self._geometry(approach)
        lane_w = max(ln.width_m for ln in approach.lanes)
        fronts = []
        for p in placed:
            v = p.vehicle
            w = min(lane_px * 0.95, lane_px * v.width_m / lane_w)
            cx = right - (p.slot + 0.5) * lane_px - v.lat_m * lane_px / lane_w
            y0 = p.dist_m * along
            y1 = y0 + v.length_m * along
            x0, x1 = cx - w / 2, cx + w / 2
            r, g, b = v.colour
            body = (int(b), int(g), int(r))
            cv2.rectangle(img, (round(x0), round(y0)), (round(x1), round(y1)), body, -1)
            shade = tuple(int(c * 0.45) for c in body)
            wy = y0 + min(1.6, v.length_m * 0.25) * along
            cv2.rectangle(
                img, (round(x0 + 1), round(wy)), (round(x1 - 1), round(wy + 2)), shade, -1
            )
            fronts.append((cx, y0, w))
        s = self.size
        x, y = (int(k) for k in self._rng.integers(0, s, 2))
        return _condition(img, cond, fronts, self._rng, self._noise[y : y + s, x : x + s])

    def _road(self, approach: Approach, key: tuple[str, str]) -> np.ndarray:
        s = self.size
        rng = np.random.default_rng(zlib.crc32("/".join(key).encode()))
        verge = np.array([60, 95, 70], dtype=np.float32) + rng.normal(0, 10, 3)
        img = np.empty((s, s, 3), dtype=np.float32)
        img[:] = verge
        _, lane_px, right = self._geometry(approach)
        left = right - lane_px * approach.n_slots
        tone = float(rng.uniform(60, 95))
        img[:, round(left) : round(right)] = tone
        img += rng.normal(0, 6, (s, s, 1))
        out = np.clip(img, 0, 255).astype(np.uint8)
        for k in range(1, approach.n_slots):
            x = round(right - k * lane_px)
            for y in range(0, s, 10):
                cv2.line(out, (x, y), (x, y + 5), (200, 200, 200), 1)
        cv2.line(out, (round(left), 0), (round(right), 0), (230, 230, 230), 2)
        return out


def _condition(
    img: np.ndarray,
    cond: str,
    fronts: list[tuple[float, float, float]],
    rng: np.random.Generator,
    noise: np.ndarray,
) -> np.ndarray:
    """Lighting and weather, then sensor noise."""
    f = img.astype(np.float32)
    sigma = 4.0
    if cond == "night":
        f *= 0.28
        for cx, y0, w in fronts:
            for dx in (-w / 3, w / 3):
                cv2.circle(f, (round(cx + dx), round(y0)), 2, (230, 240, 255), -1)
        sigma = 9.0
    elif cond == "rain":
        f = np.asarray(cv2.GaussianBlur(f * 0.75, (3, 3), 0), dtype=np.float32)
        s = f.shape[0]
        for _ in range(int(rng.integers(15, 35))):
            x, y = int(rng.integers(0, s)), int(rng.integers(0, s))
            cv2.line(f, (x, y), (x + 2, y + 9), (170, 170, 175), 1)
        sigma = 7.0
    elif cond == "glare":
        s = f.shape[0]
        cx, cy = (int(k) for k in rng.integers(0, s, 2))
        blob = _glare_blob(s)  # centred at (s, s): a window puts its peak at (cx, cy)
        f += blob[s - cy : 2 * s - cy, s - cx : 2 * s - cx, None]
    f += sigma * noise
    return np.clip(f, 0, 255).astype(np.uint8)


@functools.cache
def _glare_blob(s: int) -> np.ndarray:
    yy, xx = np.mgrid[0 : 2 * s, 0 : 2 * s]
    blob = 170.0 * np.exp(-((xx - s) ** 2 + (yy - s) ** 2) / (2 * (s * 0.25) ** 2))
    return blob.astype(np.float32)


def apply_fault(img: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    """What a broken camera shows: black, heavy blur or an obstruction over most of the view."""
    if mode == "black":
        return np.clip(rng.normal(3, 1.5, img.shape), 0, 255).astype(np.uint8)
    if mode == "blur":
        return cv2.GaussianBlur(img, (0, 0), sigmaX=img.shape[0] / 10)
    if mode == "obstructed":
        out = img.copy()
        s = img.shape[0]
        centre = (int(rng.integers(s // 3, 2 * s // 3)), int(rng.integers(s // 3, 2 * s // 3)))
        cv2.ellipse(out, centre, (s // 2, int(s * 0.4)), 0, 0, 360, (25, 30, 28), -1)
        return out
    raise ValueError(f"camera fault mode {mode!r} has no rendering")
