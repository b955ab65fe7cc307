"""One junction's gateway: cameras -> counts -> aggregates up; plan down -> fallback -> applier.

`step()` is called every controller step (each simulation step in the twin, every second live);
the control work happens once per control interval of the junction's own clock.
"""

from __future__ import annotations

import logging
import math
import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.traffic.actuation import actuated_greens, green_still_needed, local_pressures
from edge.traffic.applier import AcyclicPolicy, PlanRejectedError, SafeApplier
from edge.traffic.camera_health import CameraHealth
from edge.traffic.counter import Counter
from edge.traffic.fallback import CameraState, FallbackMachine
from edge.traffic.frames import FrameSource
from edge.traffic.layout import JunctionLayout
from edge.traffic.link import TrafficLink
from edge.traffic.signal_port import SignalPort
from shared import topics
from shared.config.traffic import TrafficGatewayConfig
from shared.errors import SchemaError
from shared.messages.base import decode
from shared.messages.status import GatewayStatus
from shared.messages.traffic import ApproachCount, ModeChange, SignalPlan, TrafficAggregate

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 6  # intervals between retained status refreshes
RECOVER_INTERVALS = 2  # hysteresis before climbing back to a better mode
# Acyclic control never adds the protected turn phase that follows a through green in the
# program: turning traffic goes in the through green's gaps and its two yellows (the applier's
# clearance path). Twin, 4x4 rush, 30 min, seeds 1-3: always 115 s (oracle), after greens of
# >= 30 s 81.5, never 78.8.
TURN_AFTER_S = math.inf
# Acyclic: priority a waiting green gains per second. Every switch costs ~10 s of clearance, so
# waiting greens age slowly (twin, 30 min seed 1: 1/15 -> 100 s, 1/30 -> 82, 1/60 -> 79, 0 -> 91).
AGE_PER_S = 1.0 / 60.0
SMOOTHING = 0.15  # weight of the newest interval in the demand average
# Acyclic greens last at least their planned green (the minimum), not a multiple of it.
POLICY = AcyclicPolicy(slot_scale=1.0, turn_after_s=TURN_AFTER_S, age_per_s=AGE_PER_S)


@dataclass
class GatewayStats:
    intervals: int = 0
    aggregates: int = 0
    plans_received: int = 0
    plans_rejected: int = 0
    modes: dict[str, int] = field(default_factory=dict)  # intervals spent per mode


class TrafficGateway:
    def __init__(
        self,
        config: TrafficGatewayConfig,
        port: SignalPort,
        layout: JunctionLayout,
        *,
        frames: FrameSource,
        counter: Counter,
        link: TrafficLink | None = None,
        on_mode_change: Callable[[ModeChange], None] | None = None,
    ) -> None:
        self.config = config
        self.junction_id = config.junction_id
        self.port = port
        self.layout = layout
        self.frames = frames
        self.counter = counter
        self.link = link
        self.applier = SafeApplier(port, config.safety, POLICY)
        self.fallback = FallbackMachine(
            self.junction_id,
            recover_s=RECOVER_INTERVALS * config.control_interval_s,
            expiry_grace_s=config.plan_expiry_grace_s,
            on_change=self._mode_changed,
        )
        self.health = {a.approach_id: CameraHealth() for a in layout.approaches}
        self.stats = GatewayStats()
        self.last_counts: dict[str, tuple[float, float]] = {}
        self._inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._next_interval = port.time()
        self._interval_start = port.time() - config.control_interval_s
        self._on_mode_change = on_mode_change
        self._demand: dict[str, tuple[float, float]] = {}
        program_cycle = sum(p.duration_s for p in self.applier.program)
        self._grid: tuple[float, float] | None = (program_cycle, 0.0)
        self.local_max_pressure = True  # actuated mode: acyclic on the junction's own counts
        self.live_actuation = False  # extend/end the running green from each interval's counts
        self.uplink_delay_s = 0.0  # the twin's fault injection: aggregates leave this much later
        self._delayed: list[tuple[float, TrafficAggregate]] = []
        self.sent_this_step = False  # an aggregate went to the link in the last step()

    # -- wiring -------------------------------------------------------------------------------

    def receive_plan(self, payload: bytes) -> None:
        """Called from the MQTT thread; the plan is handled on the gateway's own thread."""
        self._inbox.put(payload)

    @property
    def mode(self) -> str:
        return self.fallback.mode

    # -- the loop -----------------------------------------------------------------------------

    def step(self) -> None:
        now = self.port.time()
        self.sent_this_step = False
        self.take_plans(now)
        if now + 1e-9 >= self._next_interval:
            self.control(now)
            self._next_interval = now + self.config.control_interval_s
        self._release(now)
        self.applier.step()

    def _release(self, now: float) -> None:
        """Hand due aggregates to the link (at once unless an uplink delay is injected)."""
        if self.link is None:
            return
        while self._delayed and self._delayed[0][0] <= now + 1e-9:
            _, aggregate = self._delayed.pop(0)
            self.link.publish(topics.traffic_aggregate(self.junction_id), aggregate)
            self.stats.aggregates += 1
            self.sent_this_step = True
        self.link.poll()

    def control(self, now: float) -> None:
        """One control interval: look, count, report, decide the mode, set the timings."""
        cameras, counts = self._observe()
        self.last_counts = counts
        self._smooth(counts)
        connected = self.link.connected if self.link is not None else False
        mode = self.fallback.update(now, connected, cameras)
        self.stats.intervals += 1
        self.stats.modes[mode] = self.stats.modes.get(mode, 0) + 1
        self._apply(mode, now, counts)
        if mode != "fixed" and self.live_actuation:
            self._actuate_current(counts)
        aggregate = TrafficAggregate(
            sender=self.junction_id,
            junction_id=self.junction_id,
            interval_start=self._interval_start,
            interval_s=max(1e-3, now - self._interval_start),
            approaches=[
                ApproachCount(
                    approach_id=c.approach_id,
                    queue=counts.get(c.approach_id, (0.0, 0.0))[0],
                    approaching=counts.get(c.approach_id, (0.0, 0.0))[1],
                    camera_healthy=c.healthy,
                    camera_reason=c.reason,
                )
                for c in cameras
            ],
            mode=mode,
            phase_index=self.applier.phase,
        )
        self._interval_start = now
        if self.link is not None:
            self._delayed.append((now + self.uplink_delay_s, aggregate))
            if self.stats.intervals % HEARTBEAT_EVERY == 1:
                self._publish_status()

    def _observe(self) -> tuple[list[CameraState], dict[str, tuple[float, float]]]:
        frames = self.frames.frames()
        cameras = []
        usable = {}
        for a in self.layout.approaches:
            frame = frames.get(a.approach_id)
            verdict = self.health[a.approach_id].check(frame)
            cameras.append(CameraState(a.approach_id, verdict.healthy, verdict.reason))
            if verdict.healthy and frame is not None:
                usable[a.approach_id] = frame
        counts = self.counter.count(usable) if usable else {}
        return cameras, counts

    def _apply(self, mode: str, now: float, counts: dict[str, tuple[float, float]]) -> None:
        if mode == "coordinated":
            plan = self.fallback.usable_plan(now)
            if plan is not None:
                greens = self.applier.greens_from_plan(plan)  # validated on arrival
                # keep the cycle on the plan's grid: junctions stay coordinated with each other
                alignment = (plan.cycle_s, plan.offset_s)
                self._grid = alignment
                self.applier.set_targets(greens, f"plan {plan.plan_id}", alignment)
                pressures = {g.phase_index: g.pressure for g in plan.greens}
                if all(v is not None for v in pressures.values()):
                    # max-pressure plan: the applier picks the next phase by these priorities
                    self.applier.set_priorities(
                        {k: float(v or 0.0) for k, v in pressures.items()}, f"plan {plan.plan_id}"
                    )
                else:
                    self.applier.set_priorities(None, f"plan {plan.plan_id}")
                return
        if mode in ("coordinated", "actuated"):
            if self.local_max_pressure:
                # acyclic on the junction's own counts: the cloud's plan without the downstream
                floor = self.config.safety.min_green_s
                self.applier.set_targets(
                    dict.fromkeys(self.applier.green_phases, floor), "actuated"
                )
                local = local_pressures(self.applier.program, self.layout, counts)
                self.applier.set_priorities(local, "actuated")
                return
            greens = actuated_greens(
                self.applier.program, self.layout, self._demand, self.config.safety.min_green_s
            )
            # stay on the last plan's cycle grid, so neighbours keep their coordination
            self.applier.set_targets(greens, "actuated", self._grid)
            self.applier.set_priorities(None, "actuated")
            return
        self.applier.set_priorities(None, "fixed")
        self.applier.set_targets(self.applier.fixed_greens, "fixed")

    def _smooth(self, counts: dict[str, tuple[float, float]]) -> None:
        """Demand as a moving average: one snapshot mostly shows which phase is green."""
        alpha = SMOOTHING
        fresh = {}
        for a, (q, n) in counts.items():
            old = self._demand.get(a)
            fresh[a] = (
                (q, n)
                if old is None
                else (
                    old[0] + alpha * (q - old[0]),
                    old[1] + alpha * (n - old[1]),
                )
            )
        self._demand = fresh  # approaches without a count drop out (camera unhealthy)

    def _actuate_current(self, counts: dict[str, tuple[float, float]]) -> None:
        """Extend the running green while its queue lasts; end it once what it serves is clear."""
        phase = self.applier.program[self.applier.phase]
        if phase.kind != "green":
            return
        need = green_still_needed(phase.state, self.layout, counts)
        if need is not None:
            self.applier.retarget_current(self.applier.phase_elapsed + need)

    def take_plans(self, now: float) -> None:
        """Handle plans that arrived; a fresh plan in coordinated mode takes effect at once."""
        while True:
            try:
                payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            self.stats.plans_received += 1
            try:
                plan = decode(payload, SignalPlan)
                self.applier.greens_from_plan(plan)
            except (SchemaError, PlanRejectedError) as exc:
                self.stats.plans_rejected += 1
                self.fallback.reject_plan(str(exc))
                continue
            if self.fallback.offer_plan(plan, now) and self.fallback.mode == "coordinated":
                self._apply("coordinated", now, self.last_counts)

    # -- reporting ----------------------------------------------------------------------------

    def _mode_changed(self, change: ModeChange) -> None:
        if self._on_mode_change is not None:
            self._on_mode_change(change)
        if self.link is not None:
            self.link.publish(topics.traffic_mode(self.junction_id), change)
            self._publish_status()

    def _publish_status(self) -> None:
        if self.link is None:
            return
        status = GatewayStatus(
            sender=self.junction_id,
            gateway_id=self.junction_id,
            kind="traffic",
            state="online" if self.fallback.mode == "coordinated" else "degraded",
            outbox_depth=self.link.outbox.depth(),
            detail=f"mode {self.fallback.mode}",
        )
        self.link.publish(self.link.status_topic, status, retain=True)
