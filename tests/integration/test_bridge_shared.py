"""Bridge replicas on an MQTT v5 shared subscription through a real mosquitto."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from cloud.bridge_client import BridgeClient, shared_topic
from cloud.bridge_core import AggregateBatch, BridgeCore, Outgoing
from cloud.store import SqliteStore
from shared import topics
from shared.broker import MosquittoBroker
from shared.config import MqttSettings
from shared.errors import ConfigError
from shared.messages import GatewayStatus, ScanVerdictEvent, TrafficAggregate
from shared.mqtt import QOS, connect, make_client
from shared.verdicts import Verdict
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt


class Replica:
    """A bridge replica whose coordinator records each forwarded aggregate, in order."""

    def __init__(self, settings: MqttSettings, name: str, data_dir: Path) -> None:
        self.forwarded: list[TrafficAggregate] = []
        self.batches: list[int] = []
        self.lock = threading.Lock()
        self.store = SqliteStore(data_dir)
        self.core = BridgeCore(self.store, self._publish, forward_batch=self._forward)
        self.client = BridgeClient(settings, name, self.core)

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.client.publish(topic, payload, retain)

    def _forward(self, batch: AggregateBatch) -> Outgoing:
        with self.lock:
            self.forwarded.extend(agg for _, _, agg in batch)
            self.batches.append(len(batch))
        return []

    def ids(self) -> list[str]:
        with self.lock:
            return [a.message_id for a in self.forwarded]


@contextmanager
def _replicas(broker: MosquittoBroker, tmp_path: Path, n: int) -> Iterator[list[Replica]]:
    settings = MqttSettings(port=broker.port)
    reps = [Replica(settings, f"bridge-{i}", tmp_path / f"r{i}") for i in range(n)]
    for r in reps:
        r.client.start()
    try:
        for r in reps:
            wait_for(r.client.subscribed.is_set, what=f"{r.client.client._client_id!r} SUBACK")
        yield reps
    finally:
        for r in reps:
            r.client.stop()


@contextmanager
def _publisher(broker: MosquittoBroker, name: str) -> Iterator[paho.Client]:
    settings = MqttSettings(port=broker.port)
    client = make_client(settings, name)
    client.max_queued_messages_set(0)
    connect(client, settings, persistent=False)
    wait_for(client.is_connected, what=f"{name} connected")
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def _aggregate(junction: str, seq: int, claimed: str | None = None) -> TrafficAggregate:
    return TrafficAggregate(
        sender=junction,
        junction_id=claimed or junction,
        interval_start=float(seq),
        interval_s=1.0,
        approaches=[],
        mode="coordinated",
    )


def _publish_all(client: paho.Client, msgs: list[tuple[str, bytes]]) -> None:
    infos = [client.publish(t, p, qos=QOS) for t, p in msgs]
    for info in infos:
        info.wait_for_publish(timeout=10)


def _by_junction(aggs: list[TrafficAggregate]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for a in aggs:
        out.setdefault(a.junction_id, []).append(a.interval_start)
    return out


def test_two_replicas_share_the_load_and_together_lose_nothing(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    junctions = [f"J{i}" for i in range(5)]
    sent = {j: [_aggregate(j, s) for s in range(60)] for j in junctions}
    with _replicas(broker, tmp_path, 2) as (a, b):
        with _publisher(broker, "gateways") as pub:
            # Interleaved, as gateways publishing side by side are.
            msgs = [
                (topics.traffic_aggregate(j), sent[j][s].encode())
                for s in range(60)
                for j in junctions
            ]
            _publish_all(pub, msgs)
        total = len(msgs)
        wait_for(lambda: len(a.ids()) + len(b.ids()) >= total, what=f"{total} aggregates handled")
    got_a, got_b = a.ids(), b.ids()
    assert got_a and got_b, f"one replica got everything: {len(got_a)} / {len(got_b)}"
    assert not set(got_a) & set(got_b)  # each message went to exactly one replica
    assert sorted(got_a + got_b) == sorted(m.message_id for ms in sent.values() for m in ms)
    # Within each replica, every junction's aggregates were handed on in the order sent.
    for rep in (a, b):
        for junction, starts in _by_junction(rep.forwarded).items():
            assert starts == sorted(starts), f"{junction} reordered in a replica: {starts}"
        assert rep.core.counts["stale"] == 0


def test_one_replica_keeps_every_gateways_order_across_batches(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    junctions = [f"K{i}" for i in range(8)]
    with _replicas(broker, tmp_path, 1) as (rep,):
        with _publisher(broker, "gateways") as pub:
            _publish_all(
                pub,
                [
                    (topics.traffic_aggregate(j), _aggregate(j, s).encode())
                    for s in range(100)
                    for j in junctions
                ],
            )
        wait_for(lambda: len(rep.ids()) >= 800, what="800 aggregates handled")
    assert _by_junction(rep.forwarded) == {j: [float(s) for s in range(100)] for j in junctions}
    assert sum(rep.batches) == 800 and rep.core.counts["aggregate"] == 800


def test_spoofed_payloads_are_refused_through_the_shared_subscription(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    with _replicas(broker, tmp_path, 2) as reps:
        with _publisher(broker, "gw-evil") as pub:
            verdict = ScanVerdictEvent(
                sender="gw-1", scan_id="s9", site_id="site-a", verdict=Verdict.REFER, confidence=0.7
            )
            _publish_all(
                pub,
                [
                    (topics.traffic_aggregate("J1"), _aggregate("J1", 1, claimed="J2").encode()),
                    (topics.clinic_verdict("site-b", "gw-1"), verdict.encode()),
                    (topics.traffic_aggregate("J1"), _aggregate("J1", 2, claimed="J3").encode()),
                    (topics.traffic_aggregate("J1"), _aggregate("J1", 3).encode()),
                ],
            )
        wait_for(
            lambda: (
                sum(r.core.counts["spoofed"] for r in reps) == 3
                and sum(len(r.ids()) for r in reps) == 1
            ),
            what="3 refusals and the honest aggregate",
        )
    forwarded = [a for r in reps for a in r.forwarded]
    assert [(a.junction_id, a.interval_start) for a in forwarded] == [("J1", 3.0)]
    assert all(r.store.edge_verdict("s9") is None for r in reps)


def test_a_retained_status_reaches_every_replica(broker: MosquittoBroker, tmp_path: Path) -> None:
    """Status is not shared: the broker sends retained messages only to plain subscriptions."""
    status = GatewayStatus(sender="gw-1", gateway_id="gw-1", kind="clinic", state="online")
    with _publisher(broker, "gw-1") as pub:
        topic = topics.gateway_status("clinic", "gw-1")
        pub.publish(topic, status.encode(), qos=QOS, retain=True).wait_for_publish(timeout=10)
    with _replicas(broker, tmp_path, 2) as reps:
        wait_for(
            lambda: all(r.store.nodes() for r in reps), what="status recorded by both replicas"
        )
    assert all([n["state"] for n in r.store.nodes()] == ["online"] for r in reps)


def test_a_bad_share_group_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError, match="'a/b'"):
        shared_topic("a/b", topics.ALL_TRAFFIC_AGGREGATES)


def test_a_replica_that_leaves_mid_stream_loses_nothing(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Scale-down: the leaving replica unsubscribes, takes what it was sent, ends its session."""
    junctions = [f"L{i}" for i in range(4)]
    with _replicas(broker, tmp_path, 2) as (a, b):
        with _publisher(broker, "gateways") as pub:
            first = [
                (topics.traffic_aggregate(j), _aggregate(j, s).encode())
                for s in range(50)
                for j in junctions
            ]
            _publish_all(pub, first)
            wait_for(a.ids, what="the leaving replica got a share first")
            a.client.stop(end_session=True)
            handled_by_a = len(a.ids())
            second = [
                (topics.traffic_aggregate(j), _aggregate(j, s).encode())
                for s in range(50, 100)
                for j in junctions
            ]
            _publish_all(pub, second)
        wait_for(lambda: len(a.ids()) + len(b.ids()) >= 400, what="all 400 aggregates handled")
    assert len(a.ids()) == handled_by_a  # nothing reached it after it left
    assert len(set(a.ids()) | set(b.ids())) == 400
    assert b.core.counts["aggregate"] >= 200  # the whole second half went to the one left
