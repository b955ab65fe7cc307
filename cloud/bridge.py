"""The MQTT bridge deployment: edge events in (QoS 1, persistent session), results and plans out.

One replica holds the broker session (a fixed client id). paho runs its network loop in its own
thread; handlers run there and call other deployments through blocking handle calls, so a message
is acknowledged only after it was handled (at-least-once; duplicates are dropped by message id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from ray import serve
from ray.serve.handle import DeploymentHandle

from cloud.store import SqliteStore
from shared import topics
from shared.config import CloudConfig
from shared.errors import SchemaError
from shared.messages import GatewayStatus, ScanVerdictEvent, TrafficAggregate, decode
from shared.mqtt import QOS, connect, make_client
from shared.verdicts import Verdict

log = logging.getLogger("ray.serve")
CLIENT_ID = "edgeward-cloud-bridge"
TICK_S = 1.0
SEEN_LIMIT = 50_000
HANDLE_TIMEOUT_S = 10.0
Outgoing = list[tuple[str, bytes, bool]]


class _Seen:
    """Bounded memory of handled message ids (QoS 1 redelivers after a reconnect)."""

    def __init__(self, limit: int = SEEN_LIMIT) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, message_id: str) -> bool:
        """True if new."""
        if message_id in self._ids:
            return False
        self._ids[message_id] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True


class BridgeCore:
    """Routing without Ray: `forward` and `tick` are callables (a Serve handle in production)."""

    def __init__(
        self,
        store: SqliteStore,
        publish: Callable[[str, bytes, bool], None],
        forward: Callable[[str, bytes], Outgoing] | None = None,
        tick: Callable[[float], Outgoing] | None = None,
    ) -> None:
        self.store = store
        self.publish = publish
        self.forward = forward
        self._tick = tick
        self._seen = _Seen()
        # `spoofed`: the payload names another gateway, site or junction than the topic it came on.
        self.counts: dict[str, int] = {
            "status": 0,
            "verdict": 0,
            "aggregate": 0,
            "rejected": 0,
            "spoofed": 0,
        }

    def handle(self, topic: str, payload: bytes) -> None:
        try:
            if topic.startswith(f"{topics.ROOT}/status/"):
                self._status(topic, payload)
            elif topic.startswith(f"{topics.ROOT}/clinic/") and topic.endswith("/verdict"):
                self._verdict(topic, payload)
            elif topic.startswith(f"{topics.ROOT}/traffic/") and topic.endswith("/aggregate"):
                self._aggregate(topic, payload)
        except SchemaError as exc:
            self.counts["rejected"] += 1
            log.warning("bridge: dropped a malformed message on %s: %s", topic, exc)

    def _refuse(self, topic: str, field: str, claimed: str, authenticated: str | None) -> None:
        """The broker's ACL vouches for the ids in the topic, never for those in the payload."""
        self.counts["spoofed"] += 1
        log.warning(
            "bridge: refused a message on %s: payload %s %r disagrees with the topic's %r",
            topic,
            field,
            claimed,
            authenticated,
        )

    def _status(self, topic: str, payload: bytes) -> None:
        if not payload:  # a cleared retained status
            return
        status = decode(payload, GatewayStatus)
        ids = topics.parse_gateway_status(topic)
        if ids is None or ids != (status.kind, status.gateway_id):
            claimed = f"{status.kind}/{status.gateway_id}"
            self._refuse(topic, "kind/gateway_id", claimed, "/".join(ids) if ids else None)
            return
        if not self._seen.add(status.message_id):
            return
        self.counts["status"] += 1
        kind, gateway_id = ids
        self.store.upsert(
            gateway_id,
            kind=kind,
            state=status.state,
            detail=status.detail,
            outbox_depth=status.outbox_depth,
            message_id=status.message_id,
        )
        log.info("bridge: gateway %s (%s) is %s", status.gateway_id, status.kind, status.state)

    def _verdict(self, topic: str, payload: bytes) -> None:
        event = decode(payload, ScanVerdictEvent)
        ids = topics.parse_clinic_verdict(topic)
        if ids is None or ids[0] != event.site_id:
            self._refuse(topic, "site_id", event.site_id, ids[0] if ids else None)
            return
        if event.source != "edge" or not self._seen.add(event.message_id):
            return  # our own echo, or a redelivery
        self.counts["verdict"] += 1
        self.store.record_edge_verdict(
            event.scan_id,
            site_id=event.site_id,
            message_id=event.message_id,
            verdict=event.verdict.value,
            confidence=event.confidence,
            event=event.model_dump_json(),
        )
        result = self.store.get(event.scan_id)
        if result is not None:  # the cloud already graded it: tell the gateway's subscribers
            reply = ScanVerdictEvent(
                sender=CLIENT_ID,
                scan_id=event.scan_id,
                site_id=event.site_id,
                verdict=Verdict(result.verdict),
                confidence=result.confidence,
                source="cloud",
                model_versions={"grader": result.model_version},
            )
            self.publish(topic, reply.encode(), False)

    def _aggregate(self, topic: str, payload: bytes) -> None:
        aggregate = decode(payload, TrafficAggregate)
        junction = topics.parse_traffic_aggregate(topic)
        if junction != aggregate.junction_id:
            self._refuse(topic, "junction_id", aggregate.junction_id, junction)
            return
        self.counts["aggregate"] += 1
        if self.forward is None:
            return
        for out_topic, out_payload, retain in self.forward(topic, payload):
            self.publish(out_topic, out_payload, retain)

    def tick(self, now: float) -> None:
        if self._tick is None:
            return
        for out_topic, out_payload, retain in self._tick(now):
            self.publish(out_topic, out_payload, retain)


@serve.deployment(name="MqttBridge", num_replicas=1, ray_actor_options={"num_cpus": 0})
class MqttBridge:
    def __init__(self, config: dict[str, Any], coordinator: DeploymentHandle | None = None) -> None:
        self.config = CloudConfig.model_validate(config)
        self.coordinator = coordinator
        self.store = SqliteStore(self.config.data_dir)
        self.connected = threading.Event()
        self.client = make_client(self.config.mqtt, CLIENT_ID)
        self.core = BridgeCore(
            self.store,
            self._publish,
            self._forward if coordinator is not None else None,
            self._tick_coordinator if coordinator is not None else None,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        connect(self.client, self.config.mqtt, persistent=True)
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="bridge-tick", daemon=True)
        self._ticker.start()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("bridge: broker refused the connection: %s", reason)
            return
        client.subscribe(
            [
                (topics.ALL_CLINIC_VERDICTS, QOS),
                (topics.ALL_STATUS, QOS),
                (topics.ALL_TRAFFIC_AGGREGATES, QOS),
            ]
        )
        self.connected.set()
        log.info("bridge: connected to %s:%d", self.config.mqtt.host, self.config.mqtt.port)

    def _on_disconnect(self, client: paho.Client, *args: Any) -> None:
        self.connected.clear()
        log.warning("bridge: disconnected from the broker; paho reconnects")

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            self.core.handle(msg.topic, bytes(msg.payload))
        except Exception:
            log.exception("bridge: handling a message on %s failed", msg.topic)

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.client.publish(topic, payload, qos=QOS, retain=retain)

    def _forward(self, topic: str, payload: bytes) -> list[tuple[str, bytes, bool]]:
        assert self.coordinator is not None
        out: list[tuple[str, bytes, bool]] = self.coordinator.ingest.remote(topic, payload).result(
            timeout_s=HANDLE_TIMEOUT_S
        )
        return out

    def _tick_coordinator(self, now: float) -> list[tuple[str, bytes, bool]]:
        assert self.coordinator is not None
        out: list[tuple[str, bytes, bool]] = self.coordinator.tick.remote(now).result(
            timeout_s=HANDLE_TIMEOUT_S
        )
        return out

    def _tick_loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.core.tick(time.time())
            except Exception:
                log.exception("bridge: coordinator tick failed; next tick in %.0fs", TICK_S)

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected.is_set(), "counts": dict(self.core.counts)}

    def __del__(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()
        if hasattr(self, "client"):
            self.client.loop_stop()
            self.client.disconnect()
