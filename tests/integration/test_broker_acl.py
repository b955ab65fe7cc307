"""deploy/mosquitto/ on a real mosquitto: each gateway's certificate writes only its own topics."""

from __future__ import annotations

import queue
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from edge.traffic.link import TrafficLink
from shared import topics
from shared.broker import CLOUD_IDENTITY, MosquittoBroker
from shared.config import MqttSettings
from shared.messages import GatewayStatus, TrafficAggregate, decode
from shared.mqtt import QOS, connect, make_client
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt

Received = queue.Queue[tuple[str, bytes]]


def _client(broker: MosquittoBroker, identity: str, subscribe: list[str] | None = None):
    """A connected client with `identity`'s certificate; what it receives lands in the queue."""
    got: Received = queue.Queue()
    granted: queue.Queue[list[bool]] = queue.Queue()
    client = make_client(broker.client_settings(identity), f"test-{identity}", will=None)

    def on_connect(c: paho.Client, *_: object) -> None:
        if subscribe:
            c.subscribe([(t, QOS) for t in subscribe])

    def on_subscribe(c: paho.Client, u: object, mid: int, codes: list, props: object) -> None:
        granted.put([not code.is_failure for code in codes])

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = lambda c, u, msg: got.put((msg.topic, bytes(msg.payload)))
    connect(client, broker.client_settings(identity), persistent=False)
    wait_for(client.is_connected, what=f"{identity} connected over TLS")
    return client, got, (granted.get(timeout=5) if subscribe else [])


def _publish(client: paho.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    client.publish(topic, payload, qos=QOS, retain=retain).wait_for_publish(timeout=5)


def _drain_until(got: Received, topic: str) -> list[tuple[str, bytes]]:
    """Everything received up to and including the first message on `topic`."""
    seen = []
    while True:
        item = got.get(timeout=5)
        seen.append(item)
        if item[0] == topic:
            return seen


def _stop(*clients: paho.Client) -> None:
    for c in clients:
        c.loop_stop()
        c.disconnect()


def test_a_junction_writes_only_its_own_counts_and_status(
    production_broker: MosquittoBroker,
) -> None:
    cloud, seen_by_cloud, granted = _client(
        production_broker,
        CLOUD_IDENTITY,
        [topics.ALL_STATUS, topics.ALL_TRAFFIC_AGGREGATES, f"{topics.ROOT}/traffic/+/plan"],
    )
    assert granted == [True, True, True]
    j1, _, _ = _client(production_broker, "J1")
    spoof = GatewayStatus(sender="J2", gateway_id="J2", kind="traffic", state="offline")
    # Each of these is refused by the broker; J1's own aggregate, sent last on the same
    # connection, is delivered after any of them would have been.
    _publish(j1, topics.traffic_plan("J2"), b"forged plan", retain=True)
    _publish(j1, topics.traffic_plan("J1"), b"J1 may not write even its own plan", retain=True)
    _publish(j1, topics.gateway_status("traffic", "J2"), spoof.encode(), retain=True)
    _publish(j1, topics.traffic_aggregate("J2"), b"J2's counts from J1")
    _publish(j1, topics.gateway_status("traffic", "J1"), b"J1 online", retain=True)
    _publish(j1, topics.traffic_aggregate("J1"), b"J1 counts")
    seen = _drain_until(seen_by_cloud, topics.traffic_aggregate("J1"))
    assert seen == [
        (topics.gateway_status("traffic", "J1"), b"J1 online"),
        (topics.traffic_aggregate("J1"), b"J1 counts"),
    ]
    _stop(cloud, j1)


def test_a_junction_reads_only_its_own_plan(production_broker: MosquittoBroker) -> None:
    cloud, _, _ = _client(production_broker, CLOUD_IDENTITY)
    _publish(cloud, topics.traffic_plan("J1"), b"plan for J1", retain=True)
    _publish(cloud, topics.traffic_plan("J2"), b"plan for J2", retain=True)
    j1, got, _ = _client(
        production_broker, "J1", [topics.traffic_plan("J2"), topics.traffic_plan("J1")]
    )
    # mosquitto 2.0 grants the subscription but checks the read right on every delivery.
    # Retained messages come in subscription order, so a leaked J2 plan would come first.
    own = (topics.traffic_plan("J1"), b"plan for J1")
    assert _drain_until(got, topics.traffic_plan("J1")) == [own]
    _publish(cloud, topics.traffic_plan("J2"), b"live plan for J2")
    _publish(cloud, topics.traffic_plan("J1"), b"live plan for J1")
    assert _drain_until(got, topics.traffic_plan("J1")) == [
        (topics.traffic_plan("J1"), b"live plan for J1")
    ]
    _stop(cloud, j1)


def test_a_clinic_gateway_writes_verdicts_only_for_its_own_site(
    production_broker: MosquittoBroker,
) -> None:
    cloud, seen, _ = _client(production_broker, CLOUD_IDENTITY, [topics.ALL_CLINIC_VERDICTS])
    gw, _, _ = _client(production_broker, "clinic-a-gw1")
    _publish(gw, topics.clinic_verdict("clinic-b", "clinic-a-gw1"), b"other site")
    _publish(gw, topics.clinic_verdict("clinic-b", "clinic-b-gw1"), b"other gateway")
    _publish(gw, topics.clinic_verdict("clinic-a", "clinic-a-gw1"), b"own")
    assert _drain_until(seen, topics.clinic_verdict("clinic-a", "clinic-a-gw1")) == [
        (topics.clinic_verdict("clinic-a", "clinic-a-gw1"), b"own")
    ]
    _stop(cloud, gw)


def test_a_client_without_a_certificate_is_refused(production_broker: MosquittoBroker) -> None:
    with_cert = production_broker.client_settings("J1")
    no_cert = MqttSettings(
        host=with_cert.host, port=with_cert.port, tls=True, ca_file=with_cert.ca_file
    )
    client = make_client(no_cert, "test-anonymous")
    accepted: list[bool] = []
    client.on_connect = lambda c, u, f, reason, p: accepted.append(not reason.is_failure)
    # With TLS 1.3 the client learns of the refusal only after its side of the handshake: the
    # broker's alert then ends the connection, as an exception or an error code from loop().
    error: object = None
    try:
        client.connect(no_cert.host, no_cert.port)
        for _ in range(50):
            rc = client.loop(timeout=0.1)
            if rc != paho.MQTT_ERR_SUCCESS:
                error = rc
                break
    except OSError as exc:
        error = exc
    assert error is not None, "the broker kept a client that showed no certificate"
    assert accepted == []


def test_a_real_junction_link_gets_its_plan_and_its_will_goes_out_under_the_acl(
    production_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """The edge's own TrafficLink, with J1's certificate: nothing it needs is denied."""
    cloud, seen, _ = _client(
        production_broker, CLOUD_IDENTITY, [topics.ALL_STATUS, topics.ALL_TRAFFIC_AGGREGATES]
    )
    _publish(cloud, topics.traffic_plan("J1"), b"plan for J1", retain=True)
    plans: queue.Queue[bytes] = queue.Queue()
    link = TrafficLink(production_broker.client_settings("J1"), "J1", tmp_path / "j1.db", plans.put)
    link.start()
    assert plans.get(timeout=10) == b"plan for J1"
    wait_for(lambda: link.connected, what="J1 connected")
    counts = TrafficAggregate(
        sender="J1",
        junction_id="J1",
        interval_start=0.0,
        interval_s=5.0,
        approaches=[],
        mode="coordinated",
    )
    link.publish(topics.traffic_aggregate("J1"), counts)
    _, payload = _drain_until(seen, topics.traffic_aggregate("J1"))[-1]
    assert decode(payload, TrafficAggregate) == counts
    link.kill()  # no DISCONNECT: the broker publishes J1's Last Will, which the ACL allows
    _, payload = _drain_until(seen, topics.gateway_status("traffic", "J1"))[-1]
    assert decode(payload, GatewayStatus).state == "offline"
    _stop(cloud)


def test_bridge_replicas_read_through_the_acl_on_a_shared_subscription(
    production_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """The cloud identity's rights hold for `$share/...` too: two replicas get J1's counts."""
    from cloud.bridge_client import BridgeClient
    from cloud.bridge_core import AggregateBatch, BridgeCore, Outgoing
    from cloud.store import SqliteStore

    got: list[str] = []

    def forward(batch: AggregateBatch) -> Outgoing:
        got.extend(agg.junction_id for _, _, agg in batch)
        return []

    settings = production_broker.client_settings(CLOUD_IDENTITY)
    replicas = [
        BridgeClient(
            settings,
            f"bridge-{i}",
            BridgeCore(SqliteStore(tmp_path / f"r{i}"), lambda *_: None, forward_batch=forward),
        )
        for i in range(2)
    ]
    for r in replicas:
        r.start()
    for r in replicas:
        wait_for(r.subscribed.is_set, what="bridge SUBACK over TLS")
    j1, _, _ = _client(production_broker, "J1")
    for s in range(4):
        agg = TrafficAggregate(
            sender="J1",
            junction_id="J1",
            interval_start=float(s),
            interval_s=1.0,
            approaches=[],
            mode="coordinated",
        )
        _publish(j1, topics.traffic_aggregate("J1"), agg.encode())
    wait_for(lambda: len(got) == 4, what="J1's 4 aggregates through the shared subscription")
    assert all(r.core.counts["aggregate"] > 0 for r in replicas)
    _stop(j1)
    for r in replicas:
        r.stop()
