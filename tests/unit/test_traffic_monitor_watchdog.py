"""Run-time safety: the conflict monitor flashes a junction that shows a conflict, the watchdog
hands a stalled gateway's junction back to the controller's own plan, long ids fit."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from edge.traffic.console_port import ConsoleSignalPort
from edge.traffic.fallback import FallbackMachine
from edge.traffic.frames import Frame
from edge.traffic.gateway import TrafficGateway
from edge.traffic.layout import ApproachLayout, JunctionLayout
from edge.traffic.watchdog import Watchdog
from shared.config.traffic import JunctionGeometry, SignalSafety, TrafficGatewayConfig
from shared.messages.traffic import PhaseGreen, SignalPlan
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.ids import file_stem, short_id
from shared.traffic.timing import (
    ite_red_clearance_s,
    ite_yellow_s,
    junction_limits,
)
from tests.unit.traffic_fakes import MemoryPort, foes_never_green_together, four_phase_program

LONG_ID = "cluster_306484187_" + "_".join(str(306484188 + i) for i in range(30))


class _NoCameras:
    def frames(self) -> dict[str, Frame | None]:
        return {}


class _NoCounts:
    def count(self, frames: Mapping[str, Frame]) -> dict[str, tuple[float, float]]:
        return {}


def _gateway(port: MemoryPort, tmp_path: Path, junction_id: str = "J1") -> TrafficGateway:
    program = port.phases()
    layout = JunctionLayout(junction_id, (ApproachLayout("north", (0, 1)),))
    config = TrafficGatewayConfig(junction_id=junction_id, data_dir=tmp_path)
    return TrafficGateway(
        config,
        port,
        layout,
        frames=_NoCameras(),
        counter=_NoCounts(),
        conflicts=foes_never_green_together(program),
    )


def test_gateway_flashes_the_junction_when_the_controller_shows_a_conflict(tmp_path: Path) -> None:
    port = MemoryPort(four_phase_program())
    gw = _gateway(port, tmp_path)
    for _ in range(20):  # into phase 0's green
        gw.step()
        port.now += 1.0
    assert gw.monitor.tripped is None and not port.flashing  # the applier's own run is clean
    assert port.current_phase() == 0
    port._phase = 2  # a faulty controller jumps from green to the conflicting green, no yellow
    gw.step()
    assert gw.monitor.tripped is not None and gw.monitor.tripped.kind == "green_to_red"
    assert port.flashing
    switches = len(gw.applier.switches)
    for _ in range(60):
        port.now += 1.0
        gw.step()
    assert len(gw.applier.switches) == switches  # nothing drives the signals while flashing


def test_watchdog_hands_a_hung_gateway_loop_back_to_the_controllers_own_plan() -> None:
    program = four_phase_program()
    port = ConsoleSignalPort("J1", [p.__class__.from_state(p.state, 1.0) for p in program], set())
    port.set_phase(1)  # the applier put the junction into its yellow...
    hung = threading.Event()
    watchdog = Watchdog(0.5, lambda _: port.release()).start()

    def loop() -> None:
        watchdog.kick()
        hung.wait(30)  # ...and its loop hangs on a camera read

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while port.current_phase() == 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert port.current_phase() != 1, "the yellow stayed on while the loop was hung"
        assert watchdog.stalls == 1
    finally:
        hung.set()
        watchdog.stop()
    port.set_phase(0)  # the recovered loop takes control back
    assert port.current_phase() == 0


def test_a_kicked_watchdog_stays_quiet() -> None:
    fired: list[float] = []
    now = [0.0]
    watchdog = Watchdog(1.0, fired.append, clock=lambda: now[0])
    watchdog.kick()
    now[0] = 0.9
    watchdog._watch_once()
    now[0] = 1.5
    watchdog.kick()
    watchdog._watch_once()
    assert fired == []
    now[0] = 2.6
    watchdog._watch_once()
    watchdog._watch_once()
    assert fired == [pytest.approx(1.1)]  # once per stall, not once per check


def test_a_plan_that_expires_far_in_the_future_is_held_for_the_bounded_lifetime() -> None:
    fb = FallbackMachine("J1", recover_s=0, max_lifetime_s=300)
    plan = SignalPlan(
        sender="cloud",
        junction_id="J1",
        plan_id="p",
        issued_at=1000,
        expires_at=1e12,
        cycle_s=70,
        greens=[PhaseGreen(phase_index=0, green_s=30)],
    )
    assert fb.offer_plan(plan, now=1000.0)
    assert fb.usable_plan(1299.0) is not None
    assert fb.usable_plan(1300.0) is None


def test_a_joined_cluster_id_longer_than_128_characters_runs_a_gateway(tmp_path: Path) -> None:
    assert len(LONG_ID) > 300
    port = MemoryPort(four_phase_program(), junction_id=LONG_ID)
    gw = _gateway(port, tmp_path, LONG_ID)
    for _ in range(30):
        gw.step()
        port.now += 1.0
    assert gw.stats.intervals > 0
    assert len(short_id(LONG_ID)) == 128 and short_id(LONG_ID) != short_id(LONG_ID + "x")
    stem = file_stem("a/b#c" * 100)
    assert len(stem) <= 100 and "/" not in stem and stem != file_stem("a/b#c" * 99)


def test_ite_change_interval_lengthens_the_configured_floors_by_speed_and_width() -> None:
    # 50 km/h: 1 + 13.89 / 6.1 = 3.28 s of yellow; 30 m wide: (30 + 6.1) / 13.89 = 2.6 s red
    assert ite_yellow_s(13.89) == pytest.approx(3.277, abs=1e-3)
    assert ite_yellow_s(40.0) == 6.0  # capped at the 6 s a yellow may last (1 + 40 / 6.1 = 7.6)
    assert ite_red_clearance_s(13.89, 30.0) == pytest.approx(2.599, abs=1e-3)
    limits = junction_limits(
        SignalSafety(yellow_s=3, all_red_s=1),
        JunctionGeometry(approach_speed_mps=13.89, width_m=30.0),
    )
    assert (limits.yellow_s, limits.all_red_s) == (3.28, 2.6)
    kept = junction_limits(
        SignalSafety(yellow_s=5, all_red_s=4),
        JunctionGeometry(approach_speed_mps=13.89, width_m=30.0),
    )
    assert (kept.yellow_s, kept.all_red_s) == (5, 4)  # a junction's own longer values stand
    with pytest.raises(ValueError, match="approach speed 0"):
        ite_yellow_s(0)


def test_conflict_matrix_rejects_a_pair_outside_the_junction() -> None:
    with pytest.raises(ValueError, match=r"\(0, 9\)"):
        ConflictMatrix.of(4, [(0, 9)])
