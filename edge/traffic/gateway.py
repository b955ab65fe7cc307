"""One junction's gateway: cameras -> counts -> aggregates up; plan down -> fallback -> applier.

`step()` is called every controller step (each simulation step in the twin, every second live);
the control work happens once per control interval of the junction's own clock.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.traffic.actuation import local_pressures
from edge.traffic.acyclic import PRODUCTION_POLICY
from edge.traffic.applier import PlanRejectedError, SafeApplier
from edge.traffic.camera_health import CameraHealth
from edge.traffic.counter import Counter
from edge.traffic.fallback import CameraState, Decision, FallbackMachine
from edge.traffic.frames import FrameSource
from edge.traffic.layout import JunctionLayout
from edge.traffic.link import TrafficLink
from edge.traffic.monitor import ConflictMonitor
from edge.traffic.signal_port import SignalPort
from shared import topics
from shared.config.traffic import TrafficGatewayConfig
from shared.errors import SchemaError
from shared.messages.base import decode
from shared.messages.status import GatewayStatus
from shared.messages.traffic import ApproachCount, ModeChange, SignalPlan, TrafficAggregate
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.demand import GAP_OUT_LOAD
from shared.traffic.ids import short_id
from shared.traffic.timing import junction_limits

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 6  # intervals between retained status refreshes
RECOVER_INTERVALS = 2  # hysteresis before climbing back to a better mode


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
        conflicts: ConflictMatrix | None = None,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        """`conflicts`: the junction's foe matrix from the network (None: every pair conflicts);
        `wall_clock`: epoch seconds for plan expiry (default: the port's clock, as in the twin).
        """
        self.config = config
        self.junction_id = config.junction_id
        self.port = port
        self.layout = layout
        self.frames = frames
        self.counter = counter
        self.link = link
        # the configured limits, lengthened by this junction's kinematics where they need more
        self.limits = junction_limits(config.safety, config.geometry)
        self.applier = SafeApplier(port, self.limits, PRODUCTION_POLICY, conflicts)
        self.monitor = ConflictMonitor(self.junction_id, self.limits, conflicts)
        self._wall = wall_clock or port.time
        self.fallback = FallbackMachine(
            self.junction_id,
            recover_s=RECOVER_INTERVALS * config.control_interval_s,
            expiry_grace_s=config.plan_expiry_grace_s,
            max_lifetime_s=config.max_plan_lifetime_s,
            on_change=self._mode_changed,
        )
        self.health = {a.approach_id: CameraHealth() for a in layout.approaches}
        self.stats = GatewayStats()
        self.last_counts: dict[str, tuple[float, float]] = {}
        self._inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._next_interval = port.time()
        self._next_look = port.time()
        self._arriving: dict[int, float] = {}  # per green: vehicles per lane due (the plan's)
        self._cameras: list[CameraState] = []  # as judged at the last control interval
        self._interval_start = port.time() - config.control_interval_s
        self._on_mode_change = on_mode_change
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
        if self.monitor.tripped is not None:
            self._release(now)  # flashing: nothing drives the signals until a reset
            return
        self.take_plans(self._wall())
        look = self.config.gap_check_s
        if now + 1e-9 >= self._next_interval:
            self.control(now)
            self._next_interval = now + self.config.control_interval_s
            self._next_look = now + look
        elif look > 0 and now + 1e-9 >= self._next_look:
            self.gap_check()
            self._next_look = now + look
        self._release(now)
        self.applier.step()
        shown = self.applier.driven.phases[self.port.current_phase()].state
        if self.monitor.check(self.port.time(), shown) is not None:
            self.port.fail_safe()
            self._publish_status()

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
        self._cameras = cameras
        self.last_counts = counts
        connected = self.link.connected if self.link is not None else False
        decision = self.fallback.update(self._wall(), connected, cameras)
        mode = decision.mode
        self.stats.intervals += 1
        self.stats.modes[mode] = self.stats.modes.get(mode, 0) + 1
        self._apply(decision, counts)
        aggregate = TrafficAggregate(
            sender=short_id(self.junction_id),
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
            phase_index=self.applier.program_phase,
        )
        self._interval_start = now
        if self.link is not None:
            self._delayed.append((now + self.uplink_delay_s, aggregate))
            if self.stats.intervals % HEARTBEAT_EVERY == 1:
                self._publish_status()

    def gap_check(self) -> None:
        """Between intervals: end the green shown early once the cameras it serves see nobody.

        An actuated controller gaps out on its detectors within a second; the plan's pressures
        are up to an interval (and a round trip to the cloud) old. Only an emptied green is
        acted on: a fresh look never switches towards demand sooner, since every switch costs
        a whole change interval. An emptied green the plan says a platoon is due at keeps the
        platoon's priority (`PhaseGreen.arriving`), so it ends only for a busier green.
        Cameras found unhealthy at the last interval are not trusted. Off by default
        (`gap_check_s`: see its config field).
        """
        priorities = self.applier.priorities
        shown = self.applier.current
        current = self.applier.phase
        if priorities is None or shown.kind != "green" or current not in priorities:
            return
        served = [a for a, share in self.layout.served(shown.state).items() if share > 0]
        healthy = {c.approach_id for c in self._cameras if c.healthy}
        if not served or not healthy.issuperset(served):
            return
        frames = self.frames.frames()
        usable = {a: f for a in served if (f := frames.get(a)) is not None}
        if len(usable) < len(served):
            return
        counts = self.counter.count(usable)
        fresh = local_pressures(self.applier.program, self.layout, counts)[current]
        if fresh >= 0:  # still serving someone
            return
        # emptied: what it is worth now is the platoon the cloud knows is due, if any
        due = self._arriving.get(current, 0.0)
        value = due if due >= GAP_OUT_LOAD else fresh
        if value < priorities[current]:
            priorities[current] = value
            self.applier.set_priorities(priorities, self.applier.source)

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

    def _apply(self, decision: Decision, counts: dict[str, tuple[float, float]]) -> None:
        """Set the applier from the fallback's decision: the one place timings are chosen."""
        plan = decision.plan
        self._arriving = {}
        if plan is not None:
            greens = self.applier.greens_from_plan(plan)  # validated on arrival
            # keep the cycle on the plan's grid: junctions stay coordinated with each other
            self.applier.set_targets(greens, f"plan {plan.plan_id}", (plan.cycle_s, plan.offset_s))
            if plan.control == "acyclic":
                # max-pressure plan: the applier picks the next phase by these priorities
                pressures = {g.phase_index: float(g.pressure or 0.0) for g in plan.greens}
                self.applier.set_priorities(pressures, f"plan {plan.plan_id}")
                self._arriving = {g.phase_index: g.arriving or 0.0 for g in plan.greens}
            else:
                self.applier.set_priorities(None, f"plan {plan.plan_id}")
        elif decision.mode == "actuated":
            # acyclic on the junction's own counts: the cloud's plan without the downstream
            floor = self.limits.min_green_s
            self.applier.set_targets(dict.fromkeys(self.applier.green_phases, floor), "actuated")
            local = local_pressures(self.applier.program, self.layout, counts)
            self.applier.set_priorities(local, "actuated")
        else:
            self.applier.set_priorities(None, "fixed")
            self.applier.set_targets(self.applier.fixed_greens, "fixed")

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
                self._apply(
                    self.fallback.current(now, f"fresh plan {plan.plan_id}"), self.last_counts
                )

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
        tripped = self.monitor.tripped
        status = GatewayStatus(
            sender=short_id(self.junction_id),
            gateway_id=self.junction_id,
            kind="traffic",
            state="online" if self.fallback.mode == "coordinated" and not tripped else "degraded",
            outbox_depth=self.link.outbox.depth(),
            detail=f"FLASH: conflict monitor: {tripped.detail}"
            if tripped
            else f"mode {self.fallback.mode}",
        )
        self.link.publish(self.link.status_topic, status, retain=True)
