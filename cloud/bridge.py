"""The MQTT bridge deployment: edge events in (QoS 1, shared subscription), results and plans out.

Each replica is a `BridgeClient` (cloud/bridge_client.py) in the group `$share/edgeward-bridge/`,
so the broker spreads verdicts and aggregates over the replicas. Serve autoscales them (1 to
MAX_REPLICAS) on the share of time each replica's loop is busy (cloud/bridge_scaling.py).
Routing is `BridgeCore` (cloud/bridge_core.py), Ray-free.
A batch's aggregates reach the coordinator as concurrent handle calls in rounds: a junction's
k-th aggregate of the batch goes out only after its (k-1)-th was answered, so its plans keep order.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from cloud.bridge_client import BridgeClient
from cloud.bridge_core import CLIENT_ID, AggregateBatch, BridgeCore, Outgoing, junction_rounds
from cloud.bridge_scaling import BUSY_METRIC
from cloud.store import SqliteStore
from shared.config import CloudConfig

__all__ = ["CLIENT_ID", "BridgeCore", "MqttBridge"]

log = logging.getLogger("ray.serve")
TICK_S = 1.0
HANDLE_TIMEOUT_S = 10.0
MAX_REPLICAS = 4  # Serve scales between 1 and this on the replicas' busy share (bridge_scaling)


def _replica_suffix() -> str:
    """A client id per replica: two sessions with one id would kick each other off the broker.

    The replica's rank (0..N-1) rather than its unique id: a replica Serve restarts after a crash
    gets the same rank, so it takes over the session the broker kept, with whatever was queued.
    """
    try:
        return str(serve.get_replica_context().rank.rank)
    except Exception:  # outside a replica (a direct test), or a Serve without ranks
        try:
            return serve.get_replica_context().replica_id.unique_id
        except Exception:
            return ""


@serve.deployment(
    name="MqttBridge",
    ray_actor_options={"num_cpus": 0},
    autoscaling_config={
        "min_replicas": 1,
        "initial_replicas": 1,
        "max_replicas": MAX_REPLICAS,
        "metrics_interval_s": 2.0,
        "look_back_period_s": 10.0,
        "upscale_delay_s": 10.0,
        "downscale_delay_s": 120.0,
        "policy": {"policy_function": "cloud.bridge_scaling:bridge_policy"},
    },
)
class MqttBridge:
    def __init__(self, config: dict[str, Any], coordinator: DeploymentHandle | None = None) -> None:
        self.config = CloudConfig.model_validate(config)
        self.coordinator = coordinator
        self.store = SqliteStore(self.config.data_dir)
        suffix = _replica_suffix()
        self.core = BridgeCore(
            self.store,
            self._publish,
            tick=self._tick_coordinator if coordinator is not None else None,
            forward_batch=self._forward_batch if coordinator is not None else None,
        )
        self.client = BridgeClient(
            self.config.mqtt, f"{CLIENT_ID}-{suffix}" if suffix else CLIENT_ID, self.core
        )
        self.connected = self.client.connected
        self.client.start()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="bridge-tick", daemon=True)
        self._ticker.start()

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.client.publish(topic, payload, retain)

    def _forward_batch(self, batch: AggregateBatch) -> Outgoing:
        assert self.coordinator is not None
        out: Outgoing = []
        for round_ in junction_rounds(batch):
            calls: list[Any] = [
                self.coordinator.ingest.remote(topic, payload) for topic, payload in round_
            ]
            for call in calls:
                out.extend(call.result(timeout_s=HANDLE_TIMEOUT_S))
        return out

    def _tick_coordinator(self, now: float) -> Outgoing:
        assert self.coordinator is not None
        out: Outgoing = self.coordinator.tick.remote(now).result(timeout_s=HANDLE_TIMEOUT_S)
        return out

    def _tick_loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.core.tick(time.time())
            except Exception:
                log.exception("bridge: coordinator tick failed; next tick in %.0fs", TICK_S)

    def record_autoscaling_stats(self) -> dict[str, float]:
        """Serve's autoscaler polls this; `bridge_policy` turns it into a replica count."""
        return {BUSY_METRIC: self.client.busy_fraction()}

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected.is_set(), "counts": dict(self.core.counts)}

    def __del__(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()
        if hasattr(self, "client"):
            self.client.stop(end_session=True)  # scaled down: leave the group, lose nothing
