"""The `edgeward` controller for the twin: one gateway per junction, real MQTT, the coordinator.

Every gateway runs in-process, stepped by simulation time, with its own MQTT client against a
real mosquitto started here; the coordinator runs behind `cloud.traffic.runner` on the same
topics (no Ray needed; the Serve deployment is the production path). Lock-step: after the
gateways publish an interval's aggregates, the controller waits (bounded, wall time) for that
interval's plans, so the outcome does not depend on machine speed.

Faults from the schedule: cloud_down stops the coordinator, broker_down stops mosquitto,
gateway_kill drops one gateway (its junction runs the network's own program), uplink_delay
holds aggregates back; camera faults come from the renderer. Lights no camera watches (walk or
tram signals) run their own program through the safe applier, without a gateway.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from cloud.traffic.coordinator import Coordinator, CoordinatorSettings
from edge.traffic.applier import SafeApplier
from edge.traffic.counter import Counter, ModelCounter
from edge.traffic.frames import Frame
from edge.traffic.gateway import TrafficGateway
from edge.traffic.link import TrafficLink
from edge.traffic.program import ProgramError, validate_program
from edge.traffic.safety_clock import min_green
from shared.broker import MosquittoBroker
from shared.config.base import MqttSettings
from shared.config.traffic import TrafficGatewayConfig
from shared.errors import EdgewardError
from shared.messages.traffic import ModeChange
from shared.traffic.ids import file_stem
from sim.traffic.controllers import SimContext
from sim.traffic.coordinator_runner import CoordinatorRunner
from sim.traffic.network import Junction
from sim.traffic.safety import conflicts_of
from sim.traffic.twin_topology import layout_of, topology_of

log = logging.getLogger(__name__)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise EdgewardError(f"broker {text!r}: expected HOST:PORT, e.g. 127.0.0.1:1883")
    return host, int(port)


class TwinFrames:
    """Frames of one junction's cameras from the twin's renderer."""

    def __init__(self, ctx: SimContext, junction: Junction) -> None:
        self.ctx = ctx
        self.junction = junction
        self.truth: dict[str, tuple[float, float]] = {}

    def frames(self) -> dict[str, Frame | None]:
        camera = self.ctx.camera
        t = self.ctx.time()
        out: dict[str, Frame | None] = {}
        for a in self.junction.approaches:
            frame = camera.render(self.junction.junction_id, a.approach_id, t)
            out[a.approach_id] = frame.image
            self.truth[a.approach_id] = (float(frame.truth.queue), float(frame.truth.approaching))
        return out


class TruthCounter:
    """Counts straight from SUMO (for debugging the control loop apart from the model)."""

    def __init__(self, frames: TwinFrames) -> None:
        self._frames = frames

    def count(self, frames: Mapping[str, Frame]) -> dict[str, tuple[float, float]]:
        return {a: self._frames.truth[a] for a in frames}


class EdgewardController:
    """Gateways + MQTT + coordinator wired to the twin; see the module docstring."""

    name = "edgeward"

    def __init__(
        self,
        registry: str | None = None,
        counter: str = "model",
        backend: str = "onnx-cpu",
        interval_s: float = 5.0,
        plan_wait_s: float = 2.0,
        *,
        broker: str | None = None,
        mqtt_user: str | None = None,
        mqtt_certs: str | None = None,
        external_coordinator: bool = False,
    ) -> None:
        if counter not in ("model", "truth"):
            raise EdgewardError(f"edgeward controller: counter {counter!r} must be model or truth")
        self.registry = Path(registry or os.environ.get("EDGEWARD_REGISTRY", "registry"))
        self.counter_kind = counter
        self.backend = backend
        self.interval_s = interval_s
        self.plan_wait_s = plan_wait_s
        # With an external broker and coordinator (the demo), plans come from the cloud tier:
        # nothing is started here and nothing waits in lock-step (the run is paced in real time).
        self.external_broker = _host_port(broker) if broker else None
        self.mqtt_user = mqtt_user
        # With certificates, each junction connects as itself (the broker's ACL binds its id).
        self.mqtt_certs = Path(mqtt_certs) if mqtt_certs else None
        self.external_coordinator = external_coordinator
        self.gateways: dict[str, TrafficGateway] = {}
        self.fixed: dict[str, SafeApplier] = {}  # unwatched lights, on their own schedule
        self.frames: dict[str, TwinFrames] = {}
        self.count_errors: dict[str, list[tuple[float, float]]] = {}
        self.count_truth: dict[str, list[tuple[float, float]]] = {}
        self._plan_times: dict[str, float] = {}
        self._killed: set[str] = set()
        self._restart_pending: dict[str, int] = {}
        self._runner: CoordinatorRunner | None = None
        self._model_counter: ModelCounter | None = None
        self._missed_last = False
        self.waits: list[float] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self._tmp = tempfile.TemporaryDirectory(prefix="edgeward-twin-")
        work = ctx.out_dir / "edgeward"
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.broker: MosquittoBroker | None = None
        if self.external_broker is None:
            self.broker = MosquittoBroker(workdir=Path(self._tmp.name) / "mqtt").start()
            self.mqtt = MqttSettings(host=self.broker.host, port=self.broker.port, keepalive_s=5)
        else:
            host, port = self.external_broker
            self.mqtt = MqttSettings(host=host, port=port, username=self.mqtt_user, keepalive_s=5)
        self.topology = topology_of(ctx.conn, ctx)
        self.topology.save(work / "topology.json")
        if self.counter_kind == "model":
            self._model_counter = ModelCounter(self.registry, backend=self.backend)
        self._start_runner()
        for j in ctx.junctions:
            self._start_gateway(j)
        self._drive_unwatched()
        self._wait_connected()

    def stop(self) -> None:
        self._write_report()
        for gw in self.gateways.values():
            if gw.link is not None:
                gw.link.stop()
        if self._runner is not None:
            self._runner.stop()
        if self.broker is not None:
            self.broker.close()
        self._tmp.cleanup()

    def _start_runner(self) -> None:
        if self.external_coordinator:
            return
        coordinator = Coordinator(
            self.topology,
            safety=self.ctx.safety,
            settings=CoordinatorSettings(interval_s=self.interval_s),
        )
        self._runner = CoordinatorRunner(coordinator, self.mqtt).start()

    def _start_gateway(self, junction: Junction) -> None:
        jid = junction.junction_id
        config = TrafficGatewayConfig(
            junction_id=jid,
            data_dir=self.work / "gateways",
            control_interval_s=self.interval_s,
            safety=self.ctx.safety,
            mqtt=self._mqtt_for(jid),
        )
        frames = TwinFrames(self.ctx, junction)
        counter: Counter = (
            self._model_counter if self._model_counter is not None else TruthCounter(frames)
        )
        holder: dict[str, TrafficGateway] = {}

        def on_plan(payload: bytes) -> None:
            holder["gw"].receive_plan(payload)
            with contextlib.suppress(ValueError, KeyError, TypeError):  # the gateway says why
                self._plan_times[jid] = float(json.loads(payload)["issued_at"])

        outbox = config.data_dir / f"{file_stem(jid)}.outbox.sqlite"
        try:
            validate_program(jid, self.ctx.port(jid).phases(), conflicts_of(junction.layout))
        except ProgramError as exc:
            self.ctx.record_mode_change(jid, "fixed", "fixed", f"program refused: {exc}")
            self._keep_own_program(jid, exc)
            return
        self._note_left_out(jid)
        link = TrafficLink(config.mqtt, jid, outbox, on_plan)
        gw = TrafficGateway(
            config,
            self.ctx.port(jid),
            layout_of(junction),
            frames=frames,
            counter=counter,
            link=link,
            on_mode_change=self._mode_changed,
            conflicts=conflicts_of(junction.layout),
        )
        holder["gw"] = gw
        self.gateways[jid] = gw
        self.frames[jid] = frames
        link.start()

    def _drive_unwatched(self) -> None:
        """Lights no camera watches (a walk or tram signal) run their own program's order and
        times through the safe applier, so their yellows and red clearances are ours too."""
        for junction in self.ctx.unwatched:
            jid = junction.junction_id
            if not self.ctx.port(jid).phases():
                self.ctx.not_driven[jid] = "no signal program (a rail signal): SUMO drives it"
                continue
            try:
                self.fixed[jid] = SafeApplier(
                    self.ctx.port(jid), self.ctx.safety, conflicts=conflicts_of(junction.layout)
                )
            except ProgramError as exc:
                self._keep_own_program(jid, exc)
            else:
                self._note_left_out(jid)

    def _note_left_out(self, jid: str) -> None:
        """Driven without some of its phases: the run says which and why."""
        if left_out := self.ctx.port(jid).left_out:
            why = list(left_out.values())
            log.warning("junction %s is driven without %s", jid, "; ".join(why))
            self.ctx.left_out[jid] = why

    def _keep_own_program(self, jid: str, exc: ProgramError) -> None:
        """The light keeps the network's own program; the run goes on and says why."""
        log.error("%s; junction %s keeps its own program", exc, jid)
        self.ctx.not_driven[jid] = f"program refused: {exc}"

    def _mqtt_for(self, jid: str) -> MqttSettings:
        if self.mqtt_certs is None:
            return self.mqtt
        for path in (self.mqtt_certs / "ca.crt", self.mqtt_certs / f"{jid}.crt"):
            if not path.is_file():
                raise EdgewardError(
                    f"--mqtt-certs {self.mqtt_certs}: {path.name} is missing for junction {jid}; "
                    f"make it with `edgeward certs device {jid} --dir {self.mqtt_certs}`"
                )
        return self.mqtt.model_copy(
            update={
                "tls": True,
                "username": None,
                "ca_file": self.mqtt_certs / "ca.crt",
                "cert_file": self.mqtt_certs / f"{jid}.crt",
                "key_file": self.mqtt_certs / f"{jid}.key",
            }
        )

    def _wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            links = [g.link for g in self.gateways.values() if g.link is not None]
            runner_ok = self._runner is None or self._runner.connected.is_set()
            if runner_ok and all(link.connected for link in links):
                return
            time.sleep(0.02)
        raise EdgewardError(f"gateways did not reach the broker on port {self.mqtt.port}")

    def _mode_changed(self, change: ModeChange) -> None:
        self.ctx.record_mode_change(
            change.junction_id, change.from_mode, change.to_mode, change.reason
        )

    # -- every step ---------------------------------------------------------------------------

    def step(self, sim_time: float) -> None:
        self._faults(sim_time)
        for gw in self.gateways.values():
            gw.step()
        for applier in self.fixed.values():
            applier.step()
        sent = [j for j, gw in self.gateways.items() if gw.sent_this_step]
        for j in sent:
            self._score_counts(j)
        own_broker_up = self.broker is not None and self.broker.running
        if sent and self._runner is not None and own_broker_up:
            self._wait_for_plans(sim_time, sent)
            for j in sent:
                self.gateways[j].take_plans(sim_time)

    def _wait_for_plans(self, t: float, junctions: list[str]) -> None:
        """Bounded wall-time wait for this interval's plans (shorter after a miss)."""
        budget = self.plan_wait_s / 10 if self._missed_last else self.plan_wait_s
        start = time.monotonic()
        expect = [j for j in junctions if self.gateways[j].link is not None]
        expect = [j for j in expect if self.gateways[j].link.connected]  # type: ignore[union-attr]
        while time.monotonic() - start < budget:
            if all(self._plan_times.get(j, -1.0) >= t - 1e-6 for j in expect):
                self._missed_last = False
                self.waits.append(time.monotonic() - start)
                return
            time.sleep(0.002)
        self._missed_last = True

    def _score_counts(self, jid: str) -> None:
        gw, frames = self.gateways[jid], self.frames[jid]
        for approach, (q, a) in gw.last_counts.items():
            tq, ta = frames.truth.get(approach, (q, a))
            self.count_errors.setdefault(f"{jid}/{approach}", []).append((q - tq, a - ta))
            self.count_truth.setdefault(f"{jid}/{approach}", []).append((tq, ta))

    # -- faults -------------------------------------------------------------------------------

    def _faults(self, t: float) -> None:
        active = self.ctx.faults.active(t)
        kinds = {f.kind for f in active}
        if self.external_coordinator or self.broker is None:
            kinds -= {"cloud_down", "broker_down"}  # the demo stops the real ones itself
        if "cloud_down" in kinds and self._runner is not None:
            log.info("t=%.0f: cloud down", t)
            self._runner.stop()
            self._runner = None
        elif "cloud_down" not in kinds and self._runner is None and not self.external_coordinator:
            log.info("t=%.0f: cloud back", t)
            self._start_runner()
        if self.broker is None:
            pass
        elif "broker_down" in kinds and self.broker.running:
            log.info("t=%.0f: broker down", t)
            self.broker.stop()
        elif "broker_down" not in kinds and not self.broker.running:
            log.info("t=%.0f: broker back", t)
            self.broker.start()
            # Lock-step: reconnecting takes wall time (paho backs off), not simulated time.
            self._wait_connected(timeout=40.0)
        delay = max((f.delay_s for f in active if f.kind == "uplink_delay"), default=0.0)
        for gw in self.gateways.values():
            gw.uplink_delay_s = delay
        killed = {f.junction for f in active if f.kind == "gateway_kill"}
        for jid in killed - self._killed:
            self._kill_gateway(jid, t)
        for jid in self._killed - killed:
            self._maybe_restart(jid)

    def _kill_gateway(self, jid: str, t: float) -> None:
        """The gateway dies; the signal controller falls back to the network's own program."""
        gw = self.gateways.pop(jid, None)
        self._killed.add(jid)
        if gw is None:
            return
        if gw.link is not None:
            gw.link.kill()
        applier = gw.applier
        phase = applier.program_phase  # a red clearance hands back as its yellow
        elapsed = t - applier.switches[-1].time
        p = applier.current
        if p.kind == "green":
            crossing = gw.port.has_pedestrian_crossing(phase)
            lo = min_green(self.ctx.safety, crossing)
            remaining = min(max(p.duration_s, lo), self.ctx.safety.max_green_s) - elapsed
            remaining = max(remaining, lo - elapsed, 0.0)
        else:
            remaining = max(applier.phase_duration - elapsed, 0.0)
        self.ctx.port(jid).hand_back(phase, remaining)
        self.ctx.record_mode_change(jid, gw.mode, "fixed", "gateway killed: network program")
        self._restart_pending[jid] = -1

    def _maybe_restart(self, jid: str) -> None:
        """A new gateway takes over at a phase boundary, so no phase is held too long."""
        phase = int(self.ctx.conn.trafficlight.getPhase(jid))
        last = self._restart_pending.get(jid, -1)
        self._restart_pending[jid] = phase
        if last in (-1, phase):
            return
        self._killed.discard(jid)
        del self._restart_pending[jid]
        junction = next(j for j in self.ctx.junctions if j.junction_id == jid)
        self._start_gateway(junction)

    # -- report -------------------------------------------------------------------------------

    def _write_report(self) -> None:
        errors = {
            k: {
                "n": len(v),
                "queue_mae": round(sum(abs(e[0]) for e in v) / len(v), 3),
                "approaching_mae": round(sum(abs(e[1]) for e in v) / len(v), 3),
                # what a counter that always said zero would score
                "queue_mean_truth": round(sum(t[0] for t in self.count_truth[k]) / len(v), 3),
                "approaching_mean_truth": round(sum(t[1] for t in self.count_truth[k]) / len(v), 3),
            }
            for k, v in sorted(self.count_errors.items())
            if v
        }
        modes: dict[str, int] = {}
        for gw in self.gateways.values():
            for m, n in gw.stats.modes.items():
                modes[m] = modes.get(m, 0) + n
        report = {
            "counter": self.counter_kind,
            "gateways": {
                j: {
                    "aggregates": gw.stats.aggregates,
                    "plans_received": gw.stats.plans_received,
                    "plans_rejected": gw.stats.plans_rejected,
                    "outbox_depth": gw.link.outbox.depth() if gw.link is not None else 0,
                    "modes": gw.stats.modes,
                    # the conflict monitor's trip, if any: the junction flashed from then on
                    "monitor_tripped": gw.monitor.tripped.detail if gw.monitor.tripped else None,
                }
                for j, gw in sorted(self.gateways.items())
            },
            "count_mae_per_approach": errors,
            "intervals_per_mode": modes,
            "plan_waits": len(self.waits),
            "mean_plan_wait_ms": round(1000 * sum(self.waits) / len(self.waits), 2)
            if self.waits
            else None,
        }
        (self.work / "report.json").write_text(json.dumps(report, indent=1) + "\n")
