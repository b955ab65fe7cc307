"""Deliver a model version to a set of gateways over MQTT and collect their answers."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as paho

from shared import topics
from shared.config.base import MqttSettings
from shared.errors import EdgewardError
from shared.messages import ModelUpdate, ModelUpdateAck, decode
from shared.mqtt import QOS, connect, make_client
from shared.registry import Registry


class ModelDelivery:
    """Publishes ModelUpdates (QoS 1) and keeps the gateways' acks, keyed by update id."""

    def __init__(self, settings: MqttSettings, kind: str = "clinic") -> None:
        self.kind = kind
        self.acks: dict[str, ModelUpdateAck] = {}
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self.client = make_client(settings, f"edgeward-model-delivery-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = self._connected
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._message
        self._settings = settings

    def start(self, timeout: float = 10.0) -> ModelDelivery:
        connect(self.client, self._settings, persistent=False)
        if not self._ready.wait(timeout):
            raise EdgewardError(
                f"model delivery: no broker at {self._settings.host}:{self._settings.port} "
                f"within {timeout:.0f}s; start mosquitto or fix mqtt.host/port"
            )
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _connected(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(topics.all_model_update_acks(self.kind), qos=QOS)

    def _message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        try:
            ack = decode(bytes(msg.payload), ModelUpdateAck)
        except EdgewardError:
            return
        with self._cond:
            self.acks[f"{ack.update_id}/{ack.gateway_id}"] = ack
            self._cond.notify_all()

    def send(
        self, registry: Registry, name: str, version: str, gateways: Iterable[str], reason: str
    ) -> str:
        """Publish `name:version` to each gateway; returns the update's message id."""
        update = make_update(registry, name, version, reason)
        for gw in gateways:
            info = self.client.publish(topics.model_update(self.kind, gw), update.encode(), qos=QOS)
            info.wait_for_publish(timeout=10)
        return update.message_id

    def wait(
        self, update_id: str, gateways: Iterable[str], timeout: float = 30.0
    ) -> dict[str, ModelUpdateAck]:
        """The gateways' acks for one update (missing gateways are absent after `timeout`)."""
        wanted = list(gateways)
        with self._cond:
            self._cond.wait_for(
                lambda: all(f"{update_id}/{g}" in self.acks for g in wanted), timeout
            )
            return {
                g: self.acks[f"{update_id}/{g}"] for g in wanted if f"{update_id}/{g}" in self.acks
            }


def make_update(registry: Registry, name: str, version: str, reason: str = "") -> ModelUpdate:
    """The ModelUpdate carrying `name:version`'s ONNX artifact ."""
    verified = registry.load(name, version)
    art = verified.manifest.artifacts["onnx"]
    payload = verified.path("onnx").read_bytes()
    return ModelUpdate(
        sender="cloud",
        name=name,
        version=version,
        manifest_json=verified.manifest.model_dump_json(),
        sha256=art.sha256,
        payload_b64=base64.b64encode(payload).decode(),
        reason=reason,
    )
