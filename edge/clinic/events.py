"""MQTT events of a clinic gateway: verdicts through a durable outbox, status retained with a Will.

Delivery: an event is written to the outbox (in the same transaction as the verdict it reports),
published QoS 1 only while connected, and deleted only when the broker's PUBACK arrives. paho keeps
a message that was in flight at a disconnect and resends it on reconnect (persistent session), so a
row is published at most once per process; after a restart the rows still on disk are published
again and receivers dedupe on `message_id`. Error codes from `publish()` keep the row for a retry.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge.outbox import EVENTS, Outbox, OutboxItem
from shared import topics
from shared.config.base import MqttSettings
from shared.messages import GatewayStatus, Message
from shared.mqtt import QOS, connect, make_client

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 20  # paho's own default window; more would only queue in its memory


class EventPublisher:
    def __init__(
        self,
        settings: MqttSettings,
        outbox: Outbox,
        *,
        site_id: str,
        gateway_id: str,
        status: Callable[[], tuple[str, int, str]],
        status_interval_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.gateway_id = gateway_id
        self.verdict_topic = topics.clinic_verdict(site_id, gateway_id)
        self.status_topic = topics.gateway_status("clinic", gateway_id)
        self._status = status  # () -> (state, outbox depth, detail)
        self._status_interval_s = status_interval_s
        will = GatewayStatus(
            sender=gateway_id,
            gateway_id=gateway_id,
            kind="clinic",
            state="offline",
            detail="connection lost",
        )
        self.client = make_client(
            settings, f"edgeward-clinic-{site_id}-{gateway_id}", will=(self.status_topic, will)
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._acks: queue.Queue[tuple[int, bool, str]] = queue.Queue()
        self._in_flight: dict[int, OutboxItem | None] = {}  # mid -> row (None: a status)
        self._issued_upto = 0  # highest outbox seq handed to paho in this process
        self._last_status: tuple[str, int, str] | None = None
        self._status_at = 0.0
        self._thread = threading.Thread(target=self._run, name="clinic-events", daemon=True)

    # -- producer side -------------------------------------------------------------------

    def put(self, conn: sqlite3.Connection, message: Message, topic: str | None = None) -> None:
        """Queue `message` inside the caller's transaction (so it exists iff its cause does)."""
        Outbox.put(
            conn,
            EVENTS,
            message.message_id,
            message.encode(),
            {"topic": topic or self.verdict_topic},
        )

    def notify(self) -> None:
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        connect(self.client, self.settings, persistent=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Say `offline` on purpose (a clean disconnect does not fire the Will), then leave."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._connected.is_set():
            info = self.client.publish(
                self.status_topic,
                self._status_message("offline", "stopped").encode(),
                qos=QOS,
                retain=True,
            )
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError) as exc:
                    log.warning("offline status not confirmed by the broker: %s", exc)
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho callbacks (network thread: never touch the database here) ---------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: object,
        reason: ReasonCode,
        properties: object,
    ) -> None:
        if reason.is_failure:
            log.error(
                "broker %s:%s refused the gateway: %s; check mqtt.username and the password in %s",
                self.settings.host,
                self.settings.port,
                reason,
                self.settings.password_env,
            )
            return
        log.info("connected to broker %s:%s", self.settings.host, self.settings.port)
        self._last_status = None  # announce again: the broker may have lost the retained one
        self._connected.set()
        self._wake.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: object,
        reason: ReasonCode,
        properties: object,
    ) -> None:
        if self._connected.is_set():
            log.warning("lost the broker (%s); events wait on disk until it returns", reason)
        self._connected.clear()

    def _on_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: object,
    ) -> None:
        self._acks.put((mid, not reason.is_failure, str(reason)))
        self._wake.set()

    # -- the publishing loop -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._settle_acks()
                if self._connected.is_set():
                    self._publish_status()
                    self._publish_waiting()
            except Exception:  # the loop must outlive any one bad row or database hiccup
                log.exception("event publisher: unexpected error; retrying")
                self._stop.wait(1.0)

    def _settle_acks(self) -> None:
        while True:
            try:
                mid, ok, reason = self._acks.get_nowait()
            except queue.Empty:
                return
            item = self._in_flight.pop(mid, None)
            if item is None:
                continue
            if ok:
                self.outbox.complete(item)
            else:
                # Refused for good (e.g. by an ACL): record why rather than retry forever.
                log.error("broker refused event %s on %s: %s", item.key, item.meta["topic"], reason)
                self.outbox.complete(item, "refused", reason)

    def _publish_waiting(self) -> None:
        room = MAX_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return
        for item in self.outbox.peek(EVENTS, limit=room, after_seq=self._issued_upto):
            info = self.client.publish(item.meta["topic"], item.payload, qos=QOS)
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                # NO_CONN: paho holds it and sends it on reconnect; the row stays until PUBACK.
                self._in_flight[info.mid] = item
                self._issued_upto = item.seq
                continue
            log.warning(
                "event %s not accepted by paho (%s); kept on disk, retrying",
                item.key,
                paho.error_string(info.rc),
            )
            self._stop.wait(0.5)
            return

    def _status_message(self, state: str, detail: str, depth: int = 0) -> GatewayStatus:
        return GatewayStatus(
            sender=self.gateway_id,
            gateway_id=self.gateway_id,
            kind="clinic",
            state=state,
            outbox_depth=depth,
            detail=detail,
        )

    def _publish_status(self) -> None:
        current = self._status()
        now = time.monotonic()
        if current == self._last_status and now - self._status_at < self._status_interval_s:
            return
        state, depth, detail = current
        info = self.client.publish(
            self.status_topic,
            self._status_message(state, detail, depth).encode(),
            qos=QOS,
            retain=True,
        )
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._in_flight[info.mid] = None
            self._last_status, self._status_at = current, now
