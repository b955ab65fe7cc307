"""The gateway's MQTT link: QoS 1 publishes through a durable outbox, plans in, Last Will set.

Every publish is written to SQLite first and deleted only when the broker's PUBACK arrives, so
a broker outage (or a gateway restart) loses nothing; receivers dedupe on message_id.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from edge.outbox import TopicOutbox
from shared import topics
from shared.config.base import MqttSettings
from shared.messages.base import Message
from shared.messages.status import GatewayStatus
from shared.mqtt import QOS, connect, make_client
from shared.traffic.ids import short_id

log = logging.getLogger(__name__)


class TrafficLink:
    """One junction's connection to the broker; `poll()` runs on the gateway's own thread."""

    def __init__(
        self,
        settings: MqttSettings,
        junction_id: str,
        outbox_path: Path,
        on_plan: Callable[[bytes], None],
    ) -> None:
        self.junction_id = junction_id
        self.outbox = TopicOutbox.open(outbox_path)
        self._on_plan = on_plan
        self._settings = settings
        self.status_topic = topics.gateway_status("traffic", junction_id)
        will = GatewayStatus(
            sender=short_id(junction_id), gateway_id=junction_id, kind="traffic", state="offline"
        )
        self.client = make_client(
            settings,
            f"edgeward-traffic-{short_id(junction_id, 64)}",
            will=(self.status_topic, will),
        )
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.client.on_publish = self._published
        self._connected_flag = threading.Event()
        self._acked: collections.deque[int] = collections.deque()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._sent_up_to = 0  # highest outbox seq handed to paho in this connection
        self._needs_flush = threading.Event()
        self._stopping = False

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        connect(self.client, self._settings, persistent=True)

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()

    def kill(self) -> None:
        """Drop the connection without a DISCONNECT, as a crash would (the Will fires)."""
        sock = self.client.socket()
        self.client.loop_stop()
        if sock is not None:
            sock.close()
        self.outbox.close()

    @property
    def connected(self) -> bool:
        return self._connected_flag.is_set()

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _connected(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("junction %s: broker refused connection: %s", self.junction_id, reason)
            return
        client.subscribe(topics.traffic_plan(self.junction_id), qos=QOS)
        self._connected_flag.set()
        self._needs_flush.set()

    def _disconnected(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._connected_flag.is_set() and not self._stopping:
            log.warning("junction %s: broker connection lost (%s)", self.junction_id, reason)
        self._connected_flag.clear()

    def _message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        self._on_plan(bytes(msg.payload))

    def _published(self, _c: paho.Client, _u: Any, mid: int, _r: Any, _p: Any) -> None:
        self._acked.append(mid)

    # -- the gateway's side -------------------------------------------------------------------

    def publish(self, topic: str, message: Message, retain: bool = False) -> None:
        """Queue durably, then send if the broker is there."""
        self.outbox.put(topic, message.encode(), retain)
        self.poll()

    def poll(self) -> None:
        """Settle acknowledged messages and send what waits in the outbox."""
        while self._acked:
            seq = self._inflight.pop(self._acked.popleft(), None)
            if seq is not None:
                self.outbox.remove(seq)
        if not self.connected:
            return
        if self._needs_flush.is_set():
            self._needs_flush.clear()
            self._inflight.clear()  # anything unacked is resent: receivers dedupe
            self._sent_up_to = 0
        for seq, topic, payload, retain in self.outbox.pending(self._sent_up_to):
            info = self.client.publish(topic, payload, qos=QOS, retain=retain)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                self._needs_flush.set()  # lost the link mid-flush; resend from the start later
                return
            self._inflight[info.mid] = seq
            self._sent_up_to = seq
