"""Camera frames show the vehicles the truth counts; conditions and faults change the pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sim.traffic.camera import CameraRenderer, VehicleState
from sim.traffic.faults import FaultSchedule
from sim.traffic.network import Approach, Junction, LaneView, SignalLayout

# Two 100 m lanes at the stop line, plus a 3rd slot (turn lane) that opens 40 m upstream.
APPROACH = Approach(
    approach_id="north",
    edge_id="N_J",
    heading_deg=180.0,
    lanes=(
        LaneView("N_J_0", 0, 40.0, 3.2),
        LaneView("N_J_1", 1, 40.0, 3.2),
        LaneView("N_J_2", 2, 40.0, 3.2),
        LaneView("up_0", 0, 100.0, 3.2, offset_m=40.0),
        LaneView("up_1", 1, 100.0, 3.2, offset_m=40.0),
    ),
    link_indices=(0, 1, 2),
)
JUNCTION = Junction("J", (APPROACH,), SignalLayout("J", 3))


def _car(lane: str, pos: float, speed: float = 0.0, length: float = 4.5) -> VehicleState:
    return VehicleState(lane, pos, speed, length, 1.8, (200, 30, 30))


VEHICLES = [
    _car("N_J_0", 39.0),  # 1 m from the stop line, halted
    _car("N_J_0", 31.0),  # queued behind it
    _car("N_J_1", 35.0, speed=8.0),  # moving
    _car("N_J_2", 20.0, length=12.0),  # a bus in the turn lane, 20 m back
    _car("up_0", 90.0, speed=5.0),  # on the upstream edge, 50 m from the stop line
    _car("up_1", 10.0),  # 130 m back: out of view
    _car("E_J_0", 39.0),  # another approach
]


def _blobs(frame: np.ndarray, empty: np.ndarray) -> int:
    diff = np.abs(frame.astype(int) - empty.astype(int)).sum(axis=2)
    mask = cv2.medianBlur((diff > 60).astype(np.uint8) * 255, 3)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    return int(sum(1 for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 6))


def test_truth_counts_halting_and_moving_vehicles_in_view() -> None:
    cam = CameraRenderer([JUNCTION], seed=1)
    cam.observe(VEHICLES)
    frame = cam.render("J", "north", 10.0)
    assert (frame.truth.queue, frame.truth.approaching) == (3, 2)


def test_frame_shows_one_blob_per_vehicle_in_view() -> None:
    cam = CameraRenderer([JUNCTION], seed=1)
    empty = cam.render("J", "north", 0.0).image
    cam.observe(VEHICLES)
    frame = cam.render("J", "north", 10.0)
    assert frame.image is not None and empty is not None
    assert frame.image.shape == (96, 96, 3) and frame.image.dtype == np.uint8
    assert _blobs(frame.image, empty) == frame.truth.queue + frame.truth.approaching


def test_night_is_darker_than_day_and_glare_brighter() -> None:
    cam = CameraRenderer([JUNCTION], seed=1)
    cam.observe(VEHICLES)
    day = cam.render("J", "north", 1.0, "day").image
    night = cam.render("J", "north", 1.0, "night").image
    glare = cam.render("J", "north", 1.0, "glare").image
    rain = cam.render("J", "north", 1.0, "rain").image
    assert day is not None and night is not None and glare is not None and rain is not None
    assert night.mean() < 0.5 * day.mean()
    assert glare.mean() > day.mean()
    assert not np.array_equal(rain, day)


def test_camera_faults_follow_the_schedule() -> None:
    faults = FaultSchedule.parse(
        [
            "camera:J:north:frozen@10-20",
            "camera:J:north:black@20-30",
            "camera:J:north:blur@30-40",
            "camera:J:north:dropped@40-50",
            "camera:J:north:obstructed@50-60",
        ]
    )
    cam = CameraRenderer([JUNCTION], seed=1, faults=faults)
    cam.observe(VEHICLES)
    before = cam.render("J", "north", 5.0)
    cam.observe(VEHICLES[2:])  # the scene changes, a frozen camera does not
    frozen = cam.render("J", "north", 15.0)
    assert frozen.fault == "frozen" and frozen.image is not None and before.image is not None
    assert np.array_equal(frozen.image, before.image)
    assert frozen.truth != before.truth  # truth still follows the street
    black = cam.render("J", "north", 25.0).image
    assert black is not None and black.mean() < 10
    healthy = cam.render("J", "north", 65.0).image
    blurred = cam.render("J", "north", 35.0).image
    assert healthy is not None and blurred is not None
    sharp = cv2.Laplacian(cv2.cvtColor(healthy, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    soft = cv2.Laplacian(cv2.cvtColor(blurred, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    assert soft < sharp / 10
    dropped = cam.render("J", "north", 45.0)
    assert dropped.image is None and dropped.fault == "dropped"
    obstructed = cam.render("J", "north", 55.0).image
    assert obstructed is not None
    assert np.mean(np.abs(obstructed.astype(int) - healthy.astype(int)).sum(axis=2) > 60) > 0.3


def test_unknown_approach_lists_the_real_ones() -> None:
    cam = CameraRenderer([JUNCTION])
    with pytest.raises(Exception, match="no approach 'west'; its approaches are north"):
        cam.render("J", "west", 0.0)
