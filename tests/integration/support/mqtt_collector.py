"""A real MQTT subscriber (persistent session, QoS 1) that keeps every message it receives."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as paho

from shared.config.base import MqttSettings
from shared.mqtt import QOS, connect, make_client


class Collector:
    def __init__(self, settings: MqttSettings, *filters: str) -> None:
        self.settings = settings
        self.filters = filters
        self.messages: list[paho.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = make_client(settings, f"test-collector-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client: paho.Client, userdata, flags, reason, properties) -> None:
        if not reason.is_failure:
            client.subscribe([(f, QOS) for f in self.filters])

    def _on_subscribe(self, client, userdata, mid, reasons, properties) -> None:
        self.subscribed.set()

    def _on_message(self, client, userdata, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(message)

    def start(self) -> Collector:
        connect(self.client, self.settings, persistent=True)
        if not self.subscribed.wait(10):
            raise AssertionError("test collector could not subscribe")
        return self

    def on(self, topic: str) -> list[paho.MQTTMessage]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
