"""The coordinator over MQTT without Ray: the twin's cloud tier (Serve is the production path).

Plans for a round go out when every expected junction has reported for it, or when the
round has waited `round_wait_s` of wall time, so a dead gateway never stalls the others.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import paho.mqtt.client as paho

from cloud.traffic.coordinator import Coordinator
from shared import topics
from shared.config.base import MqttSettings
from shared.mqtt import QOS, connect, make_client

log = logging.getLogger(__name__)


class CoordinatorRunner:
    def __init__(
        self,
        coordinator: Coordinator,
        settings: MqttSettings,
        client_id: str = "edgeward-coordinator",
        round_wait_s: float = 0.5,
    ) -> None:
        self.coordinator = coordinator
        self.settings = settings
        self.round_wait_s = round_wait_s
        self.client = make_client(settings, client_id)
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        self._lock = threading.Lock()
        self._round_time: float | None = None  # control time of the round being collected
        self._reported: set[str] = set()
        self._round_started = 0.0
        self._planned_up_to = -1.0
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._watch, name="coordinator-round", daemon=True)
        self.rounds = 0
        self.connected = threading.Event()

    def start(self) -> CoordinatorRunner:
        connect(self.client, self.settings, persistent=False)
        self._timer.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
        if self._timer.is_alive():
            self._timer.join(timeout=2)

    def _connected(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(topics.ALL_TRAFFIC_AGGREGATES, qos=QOS)
            self.connected.set()

    def _message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            agg = self.coordinator.ingest(bytes(msg.payload))
            if agg is None:
                return
            at = agg.interval_start + agg.interval_s
            if at <= self._planned_up_to:
                return  # backlog from an outage: stored as latest state, no new round
            if self._round_time is None or at > self._round_time + 1e-6:
                self._round_time = at
                self._reported = set()
                self._round_started = time.monotonic()
            self._reported.add(agg.junction_id)
            complete = self._reported >= set(self.coordinator.junction_ids)
        if complete:
            self._publish_round()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                due = (
                    self._round_time is not None
                    and self._round_time > self._planned_up_to
                    and time.monotonic() - self._round_started >= self.round_wait_s
                )
            if due:
                self._publish_round()

    def _publish_round(self) -> None:
        with self._lock:
            now = self._round_time
            if now is None or now <= self._planned_up_to:
                return
            self._planned_up_to = now
            plans = self.coordinator.plans(now)
        for plan in plans:
            self.client.publish(
                topics.traffic_plan(plan.junction_id), plan.encode(), qos=QOS, retain=True
            )
        self.rounds += 1
