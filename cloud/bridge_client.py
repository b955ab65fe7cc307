"""One bridge replica's MQTT side, without Ray: a shared subscription read a batch at a time.

Replicas join one MQTT v5 shared subscription (`$share/GROUP/...`), so the broker hands each
message to exactly one of them and adding a replica adds capacity. This client runs paho's network
loop in its own thread and collects messages there; when the socket goes quiet, the batch is full,
or its oldest message has waited `max_wait_s`, the whole batch goes to `BridgeCore.handle_batch` in
that same thread (no per-message thread hop), then each message is acknowledged: a QoS 1 message is
acknowledged only after it was handled (at-least-once; the core drops duplicates by message id).

Gateway status is subscribed without sharing: it is retained, the broker sends retained messages
only to plain subscriptions, and every replica may record a status (the upsert is idempotent).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.bridge_core import BridgeCore
from shared import topics
from shared.config.base import MqttSettings
from shared.errors import ConfigError
from shared.mqtt import QOS, make_client

log = logging.getLogger("ray.serve")
SHARE_GROUP = "edgeward-bridge"
MAX_BATCH = 512
MAX_WAIT_S = 0.002
# A replica that vanished keeps its session (and any messages the broker queued for it) this long,
# so a restart under the same client id picks them up.
SESSION_EXPIRY_S = 3_600
RECONNECT_MAX_S = 30.0
LEAVE_TIMEOUT_S = 5.0


def shared_topic(group: str, topic: str) -> str:
    """`$share/GROUP/TOPIC`; the group name must not hold wildcards or a slash."""
    if not group or any(c in group for c in "/+#"):
        raise ConfigError(
            f"bridge: shared-subscription group {group!r} must be non-empty without '/', '+', '#'; "
            f"use a plain name such as {SHARE_GROUP!r}"
        )
    return f"$share/{group}/{topic}"


class BridgeClient:
    """One replica: connect, subscribe (shared), and feed `core` in batches until `stop()`."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        core: BridgeCore,
        *,
        group: str = SHARE_GROUP,
        max_batch: int = MAX_BATCH,
        max_wait_s: float = MAX_WAIT_S,
        persistent: bool = True,
        subscriptions: list[str] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_s <= 0:
            raise ConfigError(
                f"bridge: max_batch={max_batch} and max_wait_s={max_wait_s} must both be positive"
            )
        self.settings = settings
        self.core = core
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.persistent = persistent
        shared = [topics.ALL_CLINIC_VERDICTS, topics.ALL_TRAFFIC_AGGREGATES]
        self.topics = [
            shared_topic(group, t) for t in (shared if subscriptions is None else subscriptions)
        ]
        if subscriptions is None:
            self.topics.append(topics.ALL_STATUS)
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client = make_client(settings, client_id)
        self.client.manual_ack_set(True)
        self.client.max_queued_messages_set(0)  # replies and plans are never dropped here
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self._pending: list[tuple[str, bytes, int, int]] = []
        self._idle_s = 0.0  # time in loop calls that brought nothing: the replica had slack
        self._since = time.perf_counter()
        self._stop = threading.Event()
        self._end_session = False
        self._thread = threading.Thread(target=self._run, name=f"bridge-{client_id}", daemon=True)

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S if self.persistent else 0
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=not self.persistent,
            properties=props,
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0, end_session: bool = False) -> None:
        """Stop the loop. `end_session` (a replica going away for good): first leave the shared
        group and take what the broker already sent, then end the session, so the broker routes
        nothing more to it and queues nothing for a client that will not come back."""
        self._end_session = end_session
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        """Queue a publish; paho's loop (this replica's thread) writes it out."""
        self.client.publish(topic, payload, qos=QOS, retain=retain)

    def busy_fraction(self) -> float:
        """Share of wall time since the last call spent working (0..1); resets the window."""
        now = time.perf_counter()
        elapsed, idle = now - self._since, self._idle_s
        self._since, self._idle_s = now, 0.0
        if elapsed <= 0:
            return 0.0
        return min(max(1.0 - idle / elapsed, 0.0), 1.0)

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("bridge: broker refused the connection: %s", reason)
            return
        client.subscribe([(t, QOS) for t in self.topics])
        self.connected.set()
        log.info("bridge: connected to %s:%d", self.settings.host, self.settings.port)

    def _on_disconnect(self, client: paho.Client, *args: Any) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("bridge: disconnected from the broker; reconnecting")

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._pending.append((msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            self.core.handle_batch([(topic, payload) for topic, payload, _, _ in batch])
        except Exception:
            log.exception("bridge: handling a batch of %d messages failed", len(batch))
        for _, _, mid, qos in batch:
            if qos:
                self.client.ack(mid, qos)

    def _run(self) -> None:
        backoff = 1.0
        first_at = 0.0
        while not self._stop.is_set():
            if not self._reconnected(backoff):
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            backoff = 1.0
            before = len(self._pending)
            t0 = time.perf_counter()
            # With messages in hand, only peek (no wait): a quiet socket hands them over at once;
            # under load more are already readable, so batches grow by themselves.
            rc = self.client.loop(timeout=0.0 if before else self.max_wait_s)
            n = len(self._pending)
            if n == before:
                self._idle_s += time.perf_counter() - t0
            if n and not before:
                first_at = time.monotonic()
            if n and (
                n == before  # the socket went quiet: hand over what there is
                or n >= self.max_batch
                or time.monotonic() - first_at >= self.max_wait_s
            ):
                self._flush()
            if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
                if self._pending:
                    self._flush()  # handled now; the acks are lost with the link, QoS 1 resends
                self.connected.clear()
        if self._end_session and self.client.socket() is not None:
            self._leave_group()
        if self._pending:
            self._flush()
        props = None
        if self._end_session:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_write()  # the DISCONNECT goes out: the broker publishes no Last Will

    def _leave_group(self) -> None:
        """UNSUBSCRIBE the shared topics, then handle what arrives until the UNSUBACK and a
        quiet socket: after that the broker sends this replica nothing more."""
        done = threading.Event()
        self.client.on_unsubscribe = lambda *_: done.set()
        shared = [t for t in self.topics if t.startswith("$share/")]
        if not shared:
            return
        self.client.unsubscribe(shared)
        deadline = time.monotonic() + LEAVE_TIMEOUT_S
        while time.monotonic() < deadline:
            before = len(self._pending)
            rc = self.client.loop(timeout=self.max_wait_s)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            if len(self._pending) >= self.max_batch or (
                self._pending and len(self._pending) == before
            ):
                self._flush()
            if done.is_set() and len(self._pending) == before:
                return

    def _reconnected(self, backoff: float) -> bool:
        """True when there is a socket to loop on; else one reconnect try (waiting `backoff`)."""
        if self.client.socket() is not None:
            return True
        try:
            self.client.reconnect()
            return True
        except OSError as exc:
            log.warning(
                "bridge: cannot reach the broker at %s:%d (%s); retrying in %.0fs",
                self.settings.host,
                self.settings.port,
                exc,
                backoff,
            )
            self._stop.wait(backoff)
            return False
