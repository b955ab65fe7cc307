"""Which source drives the junction: the cloud's plan, local actuation, or the fixed schedule.

Degrading is immediate; climbing back needs the better condition to hold for `recover_s`
(hysteresis), so a flapping uplink or camera does not make the signals flap with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from shared.messages.traffic import ControlMode, ModeChange, SignalPlan
from shared.traffic.ids import short_id

log = logging.getLogger(__name__)

RANK: dict[ControlMode, int] = {"fixed": 0, "actuated": 1, "coordinated": 2}


@dataclass(frozen=True)
class Decision:
    """What the junction runs now: the gateway applies it once, as it is."""

    mode: ControlMode
    plan: SignalPlan | None  # the plan to run: set exactly when mode is "coordinated"
    reason: str


@dataclass(frozen=True)
class CameraState:
    approach_id: str
    healthy: bool
    reason: str = ""


class FallbackMachine:
    """Decides the control mode from plan freshness, broker link and camera health."""

    def __init__(
        self,
        junction_id: str,
        recover_s: float,
        *,
        expiry_grace_s: float = 0.0,
        max_lifetime_s: float = 300.0,
        on_change: Callable[[ModeChange], None] | None = None,
        start_mode: ControlMode = "fixed",
    ) -> None:
        self.junction_id = junction_id
        self.recover_s = recover_s
        self.expiry_grace_s = expiry_grace_s
        self.max_lifetime_s = max_lifetime_s
        self.on_change = on_change
        self.mode: ControlMode = start_mode
        self.changes: list[ModeChange] = []
        self._plan: SignalPlan | None = None
        self._invalid: str | None = None
        self._up_since: float | None = None
        self._last_reason = "start"

    # -- inputs -------------------------------------------------------------------------------

    def offer_plan(self, plan: SignalPlan, now: float) -> bool:
        """Keep a valid plan unless it is already stale or older than the one held."""
        if self.is_stale(plan, now):
            log.info(
                "junction %s: ignoring plan %s, expired at %.1f (now %.1f)",
                self.junction_id,
                plan.plan_id,
                plan.expires_at,
                now,
            )
            return False
        if self._plan is not None and plan.issued_at < self._plan.issued_at:
            return False
        if plan.expires_at > now + self.max_lifetime_s:
            # a plan must not outlive its cloud by hours: a bad clock or a bug upstream
            log.warning(
                "junction %s: plan %s expires at %.1f, more than %.0f s from now (%.1f); "
                "holding it until %.1f",
                self.junction_id,
                plan.plan_id,
                plan.expires_at,
                self.max_lifetime_s,
                now,
                now + self.max_lifetime_s,
            )
            plan = plan.model_copy(update={"expires_at": now + self.max_lifetime_s})
        self._plan = plan
        self._invalid = None
        return True

    def reject_plan(self, reason: str) -> None:
        """A plan arrived that cannot be applied: the fixed schedule until a valid one comes."""
        log.warning("junction %s: plan rejected: %s", self.junction_id, reason)
        self._invalid = reason
        self._plan = None

    def is_stale(self, plan: SignalPlan, now: float) -> bool:
        return now >= plan.expires_at + self.expiry_grace_s

    def usable_plan(self, now: float) -> SignalPlan | None:
        """The held plan if it may still be applied; a stale plan is never returned."""
        if self._plan is None or self.is_stale(self._plan, now):
            return None
        return self._plan

    # -- the decision -------------------------------------------------------------------------

    def wanted(
        self, now: float, connected: bool, cameras: list[CameraState]
    ) -> tuple[ControlMode, str]:
        """The best mode the current conditions allow, and why."""
        broken = [c for c in cameras if not c.healthy]
        camera_note = ", ".join(f"camera {c.approach_id} {c.reason}" for c in broken)
        if self._invalid is not None:
            return "fixed", f"plan invalid: {self._invalid}"
        plan = self.usable_plan(now)
        if connected and plan is not None:
            return "coordinated", f"fresh plan {plan.plan_id}"
        if not connected:
            uplink = "broker disconnected"
        elif self._plan is None:
            uplink = "no plan from the cloud"
        else:
            uplink = f"plan {self._plan.plan_id} expired at {self._plan.expires_at:.1f}"
        if broken:
            return "fixed", f"{uplink}; {camera_note}"
        return "actuated", uplink

    def update(self, now: float, connected: bool, cameras: list[CameraState]) -> Decision:
        """Move along the ladder (down at once, up after `recover_s`); what to run now."""
        want, reason = self.wanted(now, connected, cameras)
        if RANK[want] < RANK[self.mode]:
            self._switch(want, reason)
        elif RANK[want] > RANK[self.mode]:
            if self._up_since is None:
                self._up_since = now
            if now - self._up_since >= self.recover_s:
                self._switch(want, f"recovered: {reason}")
        else:
            self._up_since = None
        return self.current(now, reason)

    def current(self, now: float, reason: str = "") -> Decision:
        """The decision for the mode held now (a fresh plan replaces the one it runs)."""
        plan = self.usable_plan(now) if self.mode == "coordinated" else None
        if self.mode == "coordinated" and plan is None:
            # the plan went stale between two intervals: never run it, drop a rung now
            self._switch("actuated", "plan expired")
        return Decision(self.mode, plan, reason or self._last_reason)

    def _switch(self, to: ControlMode, reason: str) -> None:
        change = ModeChange(
            sender=short_id(self.junction_id),
            junction_id=self.junction_id,
            from_mode=self.mode,
            to_mode=to,
            reason=reason,
        )
        log.info("junction %s: %s -> %s (%s)", self.junction_id, self.mode, to, reason)
        self.mode = to
        self._last_reason = reason
        self._up_since = None
        self.changes.append(change)
        if self.on_change is not None:
            self.on_change(change)
