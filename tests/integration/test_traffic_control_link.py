"""The gateway's MQTT link against a real mosquitto: durable through an outage, Last Will."""

from __future__ import annotations

import queue
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from edge.traffic.link import TrafficLink
from shared import topics
from shared.broker import MosquittoBroker
from shared.config import MqttSettings
from shared.messages import ApproachCount, GatewayStatus, TrafficAggregate, decode
from shared.mqtt import QOS, connect, make_client
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt


def _aggregate(k: int) -> TrafficAggregate:
    return TrafficAggregate(
        sender="J1",
        junction_id="J1",
        interval_start=5.0 * k,
        interval_s=5.0,
        approaches=[ApproachCount(approach_id="north", queue=k, approaching=0)],
        mode="actuated",
    )


def _listen(settings: MqttSettings, topic: str) -> tuple[paho.Client, queue.Queue[bytes]]:
    got: queue.Queue[bytes] = queue.Queue()
    client = make_client(settings, f"listener-{topic.count('/')}-{id(got)}")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=QOS)
    client.on_message = lambda c, u, msg: got.put(bytes(msg.payload))
    connect(client, settings, persistent=True)
    return client, got


def test_aggregates_sent_while_the_broker_is_down_arrive_after_it_returns(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    settings = MqttSettings(port=broker.port, keepalive_s=5)
    listener, got = _listen(settings, topics.traffic_aggregate("J1"))
    wait_for(listener.is_connected, what="listener connected")
    link = TrafficLink(settings, "J1", tmp_path / "outbox.sqlite", lambda _: None)
    link.start()
    wait_for(lambda: link.connected, what="gateway connected")
    link.publish(topics.traffic_aggregate("J1"), _aggregate(0))
    wait_for(lambda: not got.empty(), what="listener subscribed and receiving")
    got.get()

    broker.stop()
    wait_for(lambda: not link.connected, what="gateway notices the outage")
    for k in range(1, 6):
        link.publish(topics.traffic_aggregate("J1"), _aggregate(k))
    assert link.outbox.depth() >= 5

    broker.start()
    wait_for(lambda: link.connected, timeout=40, what="gateway reconnected")

    def delivered() -> bool:
        link.poll()
        return link.outbox.depth() == 0

    wait_for(delivered, timeout=20, what="outbox drained")
    seen: set[float] = set()

    def all_arrived() -> bool:
        while not got.empty():
            seen.add(decode(got.get(), TrafficAggregate).interval_start)
        return seen >= {5.0 * k for k in range(1, 6)}

    wait_for(all_arrived, timeout=20, what="listener got every aggregate")
    link.stop()
    listener.loop_stop()


def test_killed_gateway_leaves_an_offline_status_by_its_last_will(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    settings = MqttSettings(port=broker.port, keepalive_s=5)
    link = TrafficLink(settings, "J9", tmp_path / "outbox.sqlite", lambda _: None)
    link.start()
    wait_for(lambda: link.connected, what="gateway connected")
    link.kill()
    listener, got = _listen(settings, topics.gateway_status("traffic", "J9"))
    wait_for(lambda: not got.empty(), timeout=20, what="offline status")
    status = decode(got.get(), GatewayStatus)
    assert status.state == "offline" and status.gateway_id == "J9"
    listener.loop_stop()
