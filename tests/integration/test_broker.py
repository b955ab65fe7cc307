"""The broker fixture runs a real mosquitto: QoS 1 through it, auth enforced, sessions kept."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from shared.broker import MosquittoBroker
from shared.config import MqttSettings
from shared.messages import GatewayStatus, decode
from shared.mqtt import QOS, connect, make_client
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt


def _subscriber(
    settings: MqttSettings, topic: str, client_id: str
) -> tuple[paho.Client, queue.Queue[bytes]]:
    got: queue.Queue[bytes] = queue.Queue()
    client = make_client(settings, client_id)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=QOS)
    client.on_message = lambda c, u, msg: got.put(bytes(msg.payload))
    connect(client, settings)
    return client, got


def test_qos1_message_goes_through_a_real_broker(broker: MosquittoBroker) -> None:
    settings = MqttSettings(port=broker.port)
    sub, got = _subscriber(settings, "edgeward/v1/test", "sub-1")
    wait_for(sub.is_connected, what="sub connected")
    time.sleep(0.2)  # let the SUBACK land before publishing
    pub = make_client(settings, "pub-1")
    connect(pub, settings)
    wait_for(pub.is_connected, what="pub connected")
    sent = GatewayStatus(sender="gw", gateway_id="gw", kind="clinic", state="online")
    info = pub.publish("edgeward/v1/test", sent.encode(), qos=QOS)
    info.wait_for_publish(timeout=5)
    assert decode(got.get(timeout=5), GatewayStatus) == sent
    for c in (sub, pub):
        c.loop_stop()
        c.disconnect()


def test_auth_broker_refuses_a_wrong_password(
    auth_broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    results: list[str] = []
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.username_pw_set("edge", "wrong")
    client.on_connect = lambda c, u, f, rc, p=None: results.append(str(rc))
    client.connect("127.0.0.1", auth_broker.port)
    client.loop_start()
    wait_for(lambda: results, what="CONNACK")
    client.loop_stop()
    assert results[0] != "Success"
    assert not client.is_connected()

    monkeypatch.setenv("EDGEWARD_MQTT_PASSWORD", "s3cret")
    settings = MqttSettings(port=auth_broker.port, username="edge")
    good = make_client(settings, "good-1")
    connect(good, settings)
    wait_for(good.is_connected, what="good connected")
    good.loop_stop()
    good.disconnect()


def test_last_will_is_published_when_a_gateway_vanishes(broker: MosquittoBroker) -> None:
    settings = MqttSettings(port=broker.port, keepalive_s=5)
    topic = "edgeward/v1/status/clinic/gw-9"
    watcher, got = _subscriber(settings, topic, "watcher")
    wait_for(watcher.is_connected, what="watcher connected")
    time.sleep(0.2)
    will = GatewayStatus(sender="gw-9", gateway_id="gw-9", kind="clinic", state="offline")
    gateway = make_client(settings, "gw-9", will=(topic, will))
    connect(gateway, settings)
    wait_for(gateway.is_connected, what="gateway connected")
    gateway.loop_stop()
    gateway._sock_close()  # vanish without DISCONNECT, as a crashed or unplugged gateway does
    assert decode(got.get(timeout=15), GatewayStatus).state == "offline"
    watcher.loop_stop()
    watcher.disconnect()


def test_persistent_session_gets_messages_sent_while_away(tmp_path: Path) -> None:
    with MosquittoBroker(workdir=tmp_path / "b") as b:
        settings = MqttSettings(port=b.port)
        sub, got = _subscriber(settings, "edgeward/v1/plans", "cloud-bridge")
        wait_for(sub.is_connected, what="sub connected")
        time.sleep(0.2)
        sub.loop_stop()
        sub.disconnect()
        pub = make_client(settings, "pub-2")
        connect(pub, settings)
        wait_for(pub.is_connected, what="pub connected")
        pub.publish("edgeward/v1/plans", b"while-away", qos=QOS).wait_for_publish(timeout=5)
        b.stop()  # the queued message must survive a broker restart too
        b.start()
        back, got2 = _subscriber(settings, "edgeward/v1/plans", "cloud-bridge")
        assert got2.get(timeout=10) == b"while-away"
        assert got.empty()
        for c in (pub, back):
            c.loop_stop()
            c.disconnect()
