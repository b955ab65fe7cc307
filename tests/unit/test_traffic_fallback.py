"""Fallback steps for each fault, driven by a test clock (the state machine is the unit)."""

from __future__ import annotations

from edge.traffic.actuation import GAP_OUT_PENALTY, local_pressures
from edge.traffic.fallback import CameraState, FallbackMachine
from edge.traffic.layout import ApproachLayout, JunctionLayout
from edge.traffic.signal_port import PhaseDef
from shared.messages.traffic import ModeChange, PhaseGreen, SignalPlan

OK = [CameraState("north", True), CameraState("south", True)]
FROZEN = [CameraState("north", False, "frozen: 3 identical frames"), CameraState("south", True)]


def _plan(issued: float, expires: float, plan_id: str = "p") -> SignalPlan:
    return SignalPlan(
        sender="cloud",
        junction_id="J1",
        plan_id=plan_id,
        issued_at=issued,
        expires_at=expires,
        cycle_s=70,
        greens=[PhaseGreen(phase_index=0, green_s=30)],
    )


def _coordinated(published: list[ModeChange]) -> FallbackMachine:
    fb = FallbackMachine("J1", recover_s=10, on_change=published.append)
    fb.offer_plan(_plan(0, 30), now=0)
    fb.update(0, True, OK)
    fb.update(10, True, OK)
    assert fb.mode == "coordinated"
    return fb


def test_fresh_plan_climbs_to_coordinated_only_after_hysteresis() -> None:
    fb = FallbackMachine("J1", recover_s=10)
    fb.offer_plan(_plan(0, 30), now=0)
    assert fb.update(0, True, OK).mode == "fixed"
    assert fb.update(9, True, OK).mode == "fixed"
    assert fb.update(10, True, OK).mode == "coordinated"
    assert [c.to_mode for c in fb.changes] == ["coordinated"]


def test_expired_plan_drops_to_actuated_and_is_never_returned() -> None:
    published: list[ModeChange] = []
    fb = _coordinated(published)
    assert fb.usable_plan(29.9) is not None
    assert fb.update(30, True, OK).mode == "actuated"
    assert fb.usable_plan(30) is None
    assert "expired" in published[-1].reason


def test_broker_loss_drops_to_actuated_at_once_and_recovers_with_hysteresis() -> None:
    published: list[ModeChange] = []
    fb = _coordinated(published)
    assert fb.update(11, False, OK).mode == "actuated"
    assert published[-1].reason == "broker disconnected"
    fb.offer_plan(_plan(12, 50, "p2"), now=12)
    assert fb.update(12, True, OK).mode == "actuated"
    assert fb.update(21, True, OK).mode == "actuated"
    assert fb.update(22, True, OK).mode == "coordinated"
    assert published[-1].reason.startswith("recovered")


def test_camera_fault_without_a_plan_falls_to_the_fixed_schedule() -> None:
    published: list[ModeChange] = []
    fb = _coordinated(published)
    assert fb.update(15, True, FROZEN).mode == "coordinated"  # the cloud still plans around it
    assert fb.update(31, True, FROZEN).mode == "fixed"
    assert "camera north frozen" in published[-1].reason
    assert fb.update(35, True, OK).mode == "fixed"
    assert fb.update(45, True, OK).mode == "actuated"


def test_invalid_plan_forces_fixed_until_a_valid_one_arrives() -> None:
    published: list[ModeChange] = []
    fb = _coordinated(published)
    fb.reject_plan("phases [7] are not green phases")
    assert fb.update(12, True, OK).mode == "fixed"
    assert "plan invalid" in published[-1].reason
    assert fb.update(40, True, OK).mode == "fixed"
    fb.offer_plan(_plan(41, 80, "p3"), now=41)
    fb.update(41, True, OK)
    assert fb.update(51, True, OK).mode == "coordinated"


def test_stale_plan_on_arrival_is_ignored() -> None:
    fb = FallbackMachine("J1", recover_s=0)
    assert fb.offer_plan(_plan(0, 10), now=10) is False
    assert fb.update(10, True, OK).mode == "actuated"


def test_older_plan_does_not_replace_a_newer_one() -> None:
    fb = FallbackMachine("J1", recover_s=0)
    assert fb.offer_plan(_plan(5, 40, "new"), now=6)
    assert not fb.offer_plan(_plan(1, 40, "old"), now=6)
    plan = fb.usable_plan(6)
    assert plan is not None and plan.plan_id == "new"


def test_flapping_link_does_not_flap_the_mode_back_up() -> None:
    published: list[ModeChange] = []
    fb = _coordinated(published)
    fb.offer_plan(_plan(10, 100, "long"), now=10)
    for t in range(11, 40, 2):
        fb.update(t, t % 4 == 1, OK)
    assert fb.mode == "actuated"
    assert [c.to_mode for c in published] == ["coordinated", "actuated"]


def test_local_fallback_green_with_nobody_to_serve_yields_to_one_waiting_car() -> None:
    layout = JunctionLayout("J1", (ApproachLayout("north", (0,)), ApproachLayout("east", (1,))))
    program = [
        PhaseDef.from_state("Gr", 30),
        PhaseDef.from_state("yr", 4),
        PhaseDef.from_state("rG", 30),
        PhaseDef.from_state("ry", 4),
    ]
    busy = local_pressures(program, layout, {"north": (4.0, 1.0), "east": (1.0, 0.0)})
    assert busy[0] > busy[2] > 0  # both have demand: plain pressures
    empty = local_pressures(program, layout, {"north": (0.0, 0.0), "east": (1.0, 0.0)})
    # north's green serves nobody: it drops by the applier's switch margin, east's car outranks it
    assert empty[0] == -GAP_OUT_PENALTY and empty[2] > 0
