"""The traffic counter's training frames: the twin's camera renderer, with SUMO's definition of
the truth.

Scenes are drawn with `sim.traffic.camera.CameraRenderer` over random approaches (1-4 lanes,
split approaches, varied lengths) and random traffic per lane: a queue packed from the stop
line (halting, as SUMO counts it), discharging or free-flowing vehicles upstream, trucks and
cars in any colour, under day, night, rain and glare.
"""

from __future__ import annotations

import numpy as np

from models.counter.data import CounterData, CounterParams
from models.datasets import DatasetRequest
from models.progress import bar as progress_bar
from sim.datasets.code import source_key
from sim.traffic.camera import CONDITIONS, CameraRenderer, VehicleState, in_view, truth_of
from sim.traffic.network import CAMERA_RANGE_M, Approach, Junction, LaneView, SignalLayout


def _approach(rng: np.random.Generator, k: int) -> Approach:
    lanes_n = int(rng.choice([1, 2, 2, 3, 3, 4]))
    width = float(rng.uniform(2.8, 3.6))
    length = float(rng.choice([rng.uniform(20, 60), rng.uniform(60, 400)], p=[0.25, 0.75]))
    lanes = [LaneView(f"a{k}_{i}", i, length, width) for i in range(lanes_n)]
    if length < CAMERA_RANGE_M:  # a split approach: the feeding edge's lanes continue the view
        lanes += [
            LaneView(f"u{k}_{i}", i, 200.0, width, length) for i in range(max(1, lanes_n - 1))
        ]
    return Approach(f"ap{k}", f"e{k}", 0.0, tuple(lanes), tuple(range(lanes_n)))


def _vehicle(
    rng: np.random.Generator, lane: LaneView, dist: float, speed: float, truck: bool
) -> VehicleState:
    length = float(rng.uniform(7, 12)) if truck else float(rng.uniform(4.0, 5.2))
    width = float(rng.uniform(2.3, 2.6)) if truck else float(rng.uniform(1.6, 1.9))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    pos = lane.length_m - (dist - lane.offset_m)
    lat = float(rng.normal(0, 0.15))
    return VehicleState(lane.lane_id, pos, speed, length, width, colour, lat)  # type: ignore[arg-type]


def _traffic(rng: np.random.Generator, approach: Approach) -> list[VehicleState]:
    """Per stop-line lane: a queue from the stop line, then moving vehicles upstream."""
    out = []
    by_slot: dict[int, list[LaneView]] = {}
    for lane in approach.lanes:
        by_slot.setdefault(lane.slot, []).append(lane)
    busy = float(rng.uniform(0, 1))
    for lanes in by_slot.values():
        lanes.sort(key=lambda ln: ln.offset_m)
        dist = float(rng.uniform(0.3, 2.0))
        queue = int(rng.poisson(busy * 7)) if rng.random() < 0.75 else 0
        for _ in range(queue):
            truck = rng.random() < 0.08
            lane = next((ln for ln in reversed(lanes) if ln.offset_m <= dist), lanes[0])
            v = _vehicle(rng, lane, dist, float(rng.uniform(0, 0.09)), truck)
            out.append(v)
            dist += v.length_m + float(rng.uniform(1.5, 3.0))
        moving = int(rng.poisson(busy * 3))
        for _ in range(moving):
            dist += float(rng.uniform(3, 30))
            truck = rng.random() < 0.08
            lane = next((ln for ln in reversed(lanes) if ln.offset_m <= dist), lanes[0])
            v = _vehicle(rng, lane, dist, float(rng.uniform(0.5, 14)), truck)
            out.append(v)
            dist += v.length_m
    return out


def render_frames(n: int, seed: int, size: int, progress: bool = True) -> CounterData:
    """`n` frames with their counts; the same seed gives the same data."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.uint8)
    counts = np.empty((n, 2), np.float32)
    conditions = []
    per_scene = 8  # frames per random approach (traffic redrawn each time)
    renderer: CameraRenderer | None = None
    approach: Approach | None = None
    for i in progress_bar(range(n), desc="rendering counter frames", disable=not progress):
        if i % per_scene == 0:
            approach = _approach(rng, i)
            junction = Junction("J", (approach,), SignalLayout("J", len(approach.link_indices)))
            renderer = CameraRenderer([junction], size=size, seed=int(rng.integers(1 << 31)))
        assert renderer is not None and approach is not None
        vehicles = _traffic(rng, approach)
        renderer.observe(vehicles)
        cond = str(rng.choice(CONDITIONS, p=[0.55, 0.15, 0.15, 0.15]))
        frame = renderer.render("J", approach.approach_id, float(i), condition=cond)
        assert frame.image is not None
        truth = truth_of(in_view(approach, vehicles, CAMERA_RANGE_M))
        images[i] = frame.image
        counts[i] = (truth.queue, truth.approaching)
        conditions.append(cond)
    return CounterData(images, counts, conditions)


class CounterRenderer:
    """Renders `models.counter.data.CounterParams` (frames, seed, frame size)."""

    def generator(self) -> dict[str, str]:
        return {
            "generator": "sim.traffic.camera",
            "generator_version": "1",
            "code": source_key("sim.traffic.camera", __name__),
        }

    def render(self, request: DatasetRequest, *, workers: int) -> dict[str, np.ndarray]:
        p = CounterParams(**request.params)
        data = render_frames(p.n, p.seed, p.size)
        return data.arrays()


RENDERER = CounterRenderer()
