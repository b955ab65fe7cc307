"""The controller interface the harness drives every simulation step, and the baselines.

A controller gets a `SimContext` once (`start`), then `step(sim_time)` after every simulation
step, then `stop()`. Through the context it reaches the signals (per-junction `SignalPort`s),
the cameras, the fault schedule and the output directory; it never needs to know the network
shape beyond `ctx.junctions`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.config.traffic import SignalSafety
from shared.errors import EdgewardError
from sim.traffic.camera import CameraRenderer
from sim.traffic.faults import FaultSchedule
from sim.traffic.network import Junction
from sim.traffic.traci_port import TraciSignalPort
from sim.traffic.vehicles import VehicleFeed


class ControllerError(EdgewardError):
    """A controller name is unknown or its code cannot be loaded."""


@dataclass
class ModeChangeRecord:
    time: float
    junction_id: str
    from_mode: str
    to_mode: str
    reason: str


@dataclass
class SimContext:
    """What a controller may use during a run."""

    conn: Any  # the TraCI connection (traci.Connection); use it for anything not wrapped here
    junctions: list[Junction]  # traffic lights with at least one road approach
    faults: FaultSchedule
    out_dir: Path
    safety: SignalSafety
    seed: int = 0
    step_s: float = 1.0
    end_s: float = 0.0
    camera_size: int = 96
    camera_condition: str = "day"
    # Added to simulated time on the ports: a run paced in real time gives the gateways a wall
    # clock, so plans stamped by a real cloud coordinator compare against the same clock.
    clock_offset: float = 0.0
    # Traffic lights no camera watches (walk- or tram-only): a controller may still drive them.
    unwatched: list[Junction] = field(default_factory=list)
    # Lights a controller left on the network's own program, with why (the summary says so).
    not_driven: dict[str, str] = field(default_factory=dict)
    # Phases of a light's program it drives without (they release two foes together), with why.
    left_out: dict[str, list[str]] = field(default_factory=dict)
    mode_changes: list[ModeChangeRecord] = field(default_factory=list)
    _ports: dict[str, TraciSignalPort] = field(default_factory=dict)
    _camera: CameraRenderer | None = None
    _feed: VehicleFeed | None = None
    _observed_at: float = -1.0
    _now: float | None = None  # simulated time of the last step (one TraCI query per step)

    def time(self) -> float:
        if self._now is None:
            return float(self.conn.simulation.getTime())
        return self._now

    def port(self, junction_id: str) -> TraciSignalPort:
        """The `SignalPort` of one junction (created once, reused)."""
        if junction_id not in self._ports:
            every = [*self.junctions, *self.unwatched]
            junction = next((j for j in every if j.junction_id == junction_id), None)
            if junction is None:
                raise ControllerError(f"junction {junction_id!r} is not a traffic light here")
            self._ports[junction_id] = TraciSignalPort(
                self.conn, junction, self.clock_offset, clock=self.time
            )
        return self._ports[junction_id]

    @property
    def camera(self) -> CameraRenderer:
        """The camera renderer, fed with this step's vehicles (subscriptions start on first use)."""
        if self._camera is None:
            self._feed = VehicleFeed(self.conn)
            self._camera = CameraRenderer(
                self.junctions,
                size=self.camera_size,
                seed=self.seed,
                faults=self.faults,
                condition=self.camera_condition,
            )
        now = self.time()
        if self._observed_at != now and self._feed is not None:
            self._camera.observe(self._feed.states())
            self._observed_at = now
        return self._camera

    def record_mode_change(
        self, junction_id: str, from_mode: str, to_mode: str, reason: str, t: float | None = None
    ) -> None:
        """Count a controller mode change (coordinated/actuated/fixed) for the summary."""
        when = self.time() if t is None else t
        self.mode_changes.append(ModeChangeRecord(when, junction_id, from_mode, to_mode, reason))

    def after_step(self, now: float) -> None:
        """Harness hook, after each simulation step at `now`: the clock every port reads (60
        lights asked SUMO the time 4.7 times each a step, 30 % of a city run), and the camera's
        subscriptions kept complete once it is in use."""
        self._now = now
        if self._feed is not None:
            self._feed.on_step()


class Controller(Protocol):
    """What the harness drives. `step` runs after every simulation step."""

    name: str

    def start(self, ctx: SimContext) -> None: ...

    def step(self, sim_time: float) -> None: ...

    def stop(self) -> None: ...


class SumoProgramController:
    """The baselines: SUMO runs the network's own programs (static, actuated or delay_based).

    Which program runs is decided by the network the harness loads (`Scenario.network_for`);
    this controller only watches.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def start(self, ctx: SimContext) -> None:
        return None

    def step(self, sim_time: float) -> None:
        return None

    def stop(self) -> None:
        return None


# Controllers by name; a string entry is "module:Class", imported only when asked for.
CONTROLLERS: dict[str, Callable[[], Controller] | str] = {
    "fixed": lambda: SumoProgramController("fixed"),
    "actuated": lambda: SumoProgramController("actuated"),
    "delay_based": lambda: SumoProgramController("delay_based"),
    "edgeward": "sim.traffic.edgeward_controller:EdgewardController",
}


def make_controller(name: str, **options: Any) -> Controller:
    """A controller by name; options go to the constructor of plugin controllers."""
    entry = CONTROLLERS.get(name)
    if entry is None:
        raise ControllerError(
            f"controller {name!r} is unknown; use one of {', '.join(sorted(CONTROLLERS))}"
        )
    if not isinstance(entry, str):
        return entry()
    module_name, _, cls_name = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, cls_name)
    except (ImportError, AttributeError) as exc:
        raise ControllerError(
            f"controller {name!r}: cannot load {entry} ({exc}); is that part installed?"
        ) from exc
    controller: Controller = cls(**options)
    return controller
