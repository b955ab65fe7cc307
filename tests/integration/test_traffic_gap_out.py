"""The gateway's fast gap-out: between two aggregates it ends a green its cameras see empty
(as an actuated controller gaps out), but never one the cloud says a platoon is heading for."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from edge.traffic.fallback import CameraState
from edge.traffic.frames import Frame
from edge.traffic.gateway import TrafficGateway
from edge.traffic.layout import ApproachLayout, JunctionLayout
from edge.traffic.link import TrafficLink
from shared.broker import MosquittoBroker
from shared.config import MqttSettings
from shared.config.traffic import TrafficGatewayConfig
from shared.messages.traffic import PhaseGreen, SignalPlan
from tests.unit.traffic_fakes import MemoryPort, foes_never_green_together, four_phase_program
from tests.waiting import wait_for

NS, EW = 0, 2  # the four-phase program's two greens
LAYOUT = JunctionLayout(
    "J1", (ApproachLayout("ns", (0, 1, 4, 5)), ApproachLayout("ew", (2, 3, 6, 7)))
)


class _Cameras:
    """Healthy cameras: a fresh noisy frame per approach on every read."""

    def __init__(self) -> None:
        self._rng = np.random.default_rng(0)

    def frames(self) -> dict[str, Frame | None]:
        return {
            a.approach_id: self._rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for a in LAYOUT.approaches
        }


class _Counts:
    """What the cameras see, as the test sets it (queue, approaching) per approach."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[float, float]] = {"ns": (6.0, 2.0), "ew": (1.0, 0.0)}

    def count(self, frames: Mapping[str, Frame]) -> dict[str, tuple[float, float]]:
        return {a: self.seen[a] for a in frames}


def _gateway(
    tmp_path: Path, gap_check_s: float, link: TrafficLink | None = None
) -> tuple[TrafficGateway, MemoryPort, _Counts]:
    port = MemoryPort(four_phase_program())
    counts = _Counts()
    config = TrafficGatewayConfig(junction_id="J1", data_dir=tmp_path, gap_check_s=gap_check_s)
    gw = TrafficGateway(
        config,
        port,
        LAYOUT,
        frames=_Cameras(),
        counter=counts,
        link=link,
        conflicts=foes_never_green_together(port.phases()),
    )
    return gw, port, counts


def _run(gw: TrafficGateway, port: MemoryPort, seconds: float) -> None:
    end = port.now + seconds
    while port.now < end - 1e-9:
        gw.step()
        port.now += 0.5


def _north_south_green_into_an_interval(gw: TrafficGateway, port: MemoryPort) -> None:
    """Run until north-south has shown green for its minimum, just after a control interval."""
    _run(gw, port, 30.0)  # the fallback climbs to actuated; north-south is the busy green
    for _ in range(200):
        if (
            port.current_phase() == NS
            and gw.applier.phase_elapsed >= gw.limits.min_green_s + 1
            and gw._next_interval - port.now > 3.5
        ):
            return
        _run(gw, port, 0.5)
    raise AssertionError("north-south never settled into its green")


def _yellow_within(gw: TrafficGateway, port: MemoryPort, seconds: float) -> bool:
    end = port.now + seconds
    while port.now < end - 1e-9:
        _run(gw, port, 0.5)
        if port.current_phase() != NS:
            return True
    return False


@pytest.mark.parametrize("gap_check_s", [1.0, 0.0])
def test_an_emptied_green_ends_before_the_next_aggregate_only_with_the_fast_look(
    tmp_path: Path, gap_check_s: float
) -> None:
    gw, port, counts = _gateway(tmp_path, gap_check_s)
    _north_south_green_into_an_interval(gw, port)
    assert gw.mode == "actuated"
    counts.seen = {"ns": (0.0, 0.0), "ew": (4.0, 1.0)}  # the last car crossed; east-west waits
    ended = _yellow_within(gw, port, 2.5)  # the next control interval is > 3.5 s away
    assert ended is (gap_check_s > 0)


def test_a_green_still_serving_is_not_cut_short_by_the_fast_look(tmp_path: Path) -> None:
    gw, port, counts = _gateway(tmp_path, 1.0)
    _north_south_green_into_an_interval(gw, port)
    counts.seen = {"ns": (2.0, 1.0), "ew": (4.0, 1.0)}  # fewer, but still vehicles to serve
    assert not _yellow_within(gw, port, 2.5)


def test_the_fast_look_distrusts_a_camera_found_unhealthy(tmp_path: Path) -> None:
    gw, port, counts = _gateway(tmp_path, 1.0)
    _north_south_green_into_an_interval(gw, port)
    # the last control interval found the north-south camera frozen
    gw._cameras = [CameraState("ns", False, "frozen"), CameraState("ew", True, "")]
    counts.seen = {"ns": (0.0, 0.0), "ew": (4.0, 1.0)}
    assert not _yellow_within(gw, port, 2.5)


def _plan(now: float, arriving: float, seq: int) -> bytes:
    return SignalPlan(
        sender="coordinator",
        junction_id="J1",
        plan_id=f"p{seq}",
        issued_at=now,
        expires_at=now + 15,
        cycle_s=60,
        control="acyclic",
        greens=[
            PhaseGreen(phase_index=NS, green_s=5, pressure=4.0, arriving=arriving),
            PhaseGreen(phase_index=EW, green_s=5, pressure=1.0, arriving=0.0),
        ],
    ).encode()


@pytest.mark.mqtt
@pytest.mark.parametrize("arriving", [0.0, 3.0])
def test_a_green_the_cloud_sees_a_platoon_heading_for_is_not_gapped_out(
    broker: MosquittoBroker, tmp_path: Path, arriving: float
) -> None:
    settings = MqttSettings(port=broker.port, keepalive_s=5)
    holder: list[TrafficGateway] = []

    def deliver(payload: bytes) -> None:  # plans from the broker go to the gateway's inbox
        holder[0].receive_plan(payload)

    link = TrafficLink(settings, "J1", tmp_path / "outbox.sqlite", deliver)
    gw, port, counts = _gateway(tmp_path, 1.0, link)
    holder.append(gw)
    link.start()
    try:
        wait_for(lambda: link.connected, what="gateway connected to mosquitto")
        seq = 0
        for _ in range(80):  # plans every 5 s, as the coordinator sends them
            if port.now % 5 == 0:
                seq += 1
                gw.receive_plan(_plan(port.now, arriving, seq))
            _run(gw, port, 0.5)
        assert gw.mode == "coordinated"
        for _ in range(200):
            if port.current_phase() == NS and 2.0 < gw._next_interval - port.now < 4.5:
                break
            if port.now % 5 == 0:
                seq += 1
                gw.receive_plan(_plan(port.now, arriving, seq))
            _run(gw, port, 0.5)
        assert port.current_phase() == NS
        counts.seen = {"ns": (0.0, 0.0), "ew": (4.0, 1.0)}  # empty in sight of the camera
        ended = _yellow_within(gw, port, 2.0)  # before the next interval and the next plan
        assert ended is (arriving == 0.0)
    finally:
        link.stop()
