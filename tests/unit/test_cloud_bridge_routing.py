"""Bridge routing without Ray: status -> node table, edge verdicts kept, aggregates forwarded."""

from __future__ import annotations

import json

import pytest

from cloud.bridge_core import BridgeCore
from cloud.store import SqliteStore
from shared import topics
from shared.messages import GatewayStatus, ScanVerdictEvent, TrafficAggregate
from shared.proto import edgeward_pb2 as pb
from shared.verdicts import Verdict


def _core(tmp_path, forward=None, tick=None):
    published: list[tuple[str, bytes, bool]] = []
    store = SqliteStore(tmp_path)
    core = BridgeCore(store, lambda t, p, r: published.append((t, p, r)), forward, tick)
    return core, store, published


def test_last_will_status_marks_the_gateway_offline(tmp_path):
    core, store, _ = _core(tmp_path)
    topic = topics.gateway_status("clinic", "gw-1")
    online = GatewayStatus(sender="gw-1", gateway_id="gw-1", kind="clinic", state="online")
    core.handle(topic, online.encode())
    will = GatewayStatus(sender="gw-1", gateway_id="gw-1", kind="clinic", state="offline")
    core.handle(topic, will.encode())
    core.handle(topic, will.encode())  # QoS 1 redelivery is ignored
    assert [n["state"] for n in store.nodes()] == ["offline"]
    assert core.counts["status"] == 2


def test_edge_verdict_is_recorded_and_answered_once_the_cloud_graded_it(tmp_path):
    core, store, published = _core(tmp_path)
    store.put_if_absent(
        pb.GradeResult(scan_id="s1", verdict="refer", confidence=0.9, model_version="g:1"), "a"
    )
    topic = topics.clinic_verdict("site-a", "gw-1")
    event = ScanVerdictEvent(
        sender="gw-1",
        scan_id="s1",
        site_id="site-a",
        verdict=Verdict.REFER,
        confidence=0.8,
        codes=["triage_refer", "quality_doubt"],
    )
    core.handle(topic, event.encode())
    core.handle(topic, event.encode())
    assert store.edge_verdict("s1") == ("refer", 0.8, ("triage_refer", "quality_doubt"))
    assert len(published) == 1
    reply = ScanVerdictEvent.model_validate_json(published[0][1])
    assert reply.source == "cloud" and reply.verdict is Verdict.REFER
    core.handle(topic, published[0][1])  # our own echo is not treated as an edge verdict
    assert len(published) == 1


def _aggregate(junction_id: str) -> TrafficAggregate:
    return TrafficAggregate(
        sender=junction_id,
        junction_id=junction_id,
        interval_start=0.0,
        interval_s=5.0,
        approaches=[],
        mode="coordinated",
    )


def test_aggregates_go_to_the_coordinator_and_its_plans_are_published(tmp_path):
    seen: list[str] = []

    def forward(topic: str, payload: bytes):
        seen.append(topic)
        return [("plan-topic", b"plan", True)]

    core, _, published = _core(tmp_path, forward=forward, tick=lambda now: [("t2", b"x", True)])
    core.handle(topics.traffic_aggregate("J1"), _aggregate("J1").encode())
    core.tick(0.0)
    assert seen == [topics.traffic_aggregate("J1")]
    assert published == [("plan-topic", b"plan", True), ("t2", b"x", True)]


def test_malformed_message_is_dropped_and_counted(tmp_path):
    core, store, _ = _core(tmp_path)
    core.handle(topics.gateway_status("clinic", "gw-1"), b"{not json")
    assert core.counts["rejected"] == 1 and store.nodes() == []


def test_payload_ids_that_disagree_with_the_topic_are_refused_and_counted(tmp_path):
    """The broker ACL authenticates the topic; a payload naming another sender is a spoof."""
    forwarded: list[str] = []

    def forward(topic: str, payload: bytes) -> list[tuple[str, bytes, bool]]:
        forwarded.append(topic)
        return []

    core, store, published = _core(tmp_path, forward=forward)
    # gw-evil, allowed to write only its own status topic, claims to be gw-1 going offline.
    spoof = GatewayStatus(sender="gw-1", gateway_id="gw-1", kind="clinic", state="offline")
    core.handle(topics.gateway_status("clinic", "gw-evil"), spoof.encode())
    # The right gateway id but the wrong kind is refused as well.
    core.handle(topics.gateway_status("traffic", "gw-1"), spoof.encode())
    # A verdict on site-b's topic claiming to be site-a's.
    verdict = ScanVerdictEvent(
        sender="gw-1", scan_id="s9", site_id="site-a", verdict=Verdict.REFER, confidence=0.7
    )
    core.handle(topics.clinic_verdict("site-b", "gw-1"), verdict.encode())
    # J2's counts sent on J1's topic.
    core.handle(topics.traffic_aggregate("J1"), _aggregate("J2").encode())
    assert core.counts["spoofed"] == 4
    assert store.nodes() == [] and store.edge_verdict("s9") is None
    assert forwarded == [] and published == []
    # The honest versions of the same messages go through.
    core.handle(topics.gateway_status("clinic", "gw-1"), spoof.encode())
    core.handle(topics.clinic_verdict("site-a", "gw-1"), verdict.encode())
    core.handle(topics.traffic_aggregate("J2"), _aggregate("J2").encode())
    assert [n["node_id"] for n in store.nodes()] == ["gw-1"]
    assert store.edge_verdict("s9") == ("refer", 0.7, ())
    assert forwarded == [topics.traffic_aggregate("J2")]
    assert core.counts["spoofed"] == 4


def _at(junction_id: str, interval_start: float) -> TrafficAggregate:
    return _aggregate(junction_id).model_copy(update={"interval_start": interval_start})


def test_a_batch_reaches_the_coordinator_once_in_arrival_order(tmp_path):
    batches: list[list[tuple[str, float]]] = []

    def forward_batch(batch):
        batches.append([(agg.junction_id, agg.interval_start) for _, _, agg in batch])
        return [("plan/J1", b"p", True)]

    published: list[tuple[str, bytes, bool]] = []
    core = BridgeCore(
        SqliteStore(tmp_path), lambda *m: published.append(m), forward_batch=forward_batch
    )
    status = GatewayStatus(sender="gw-1", gateway_id="gw-1", kind="clinic", state="online")
    core.handle_batch(
        [
            (topics.traffic_aggregate("J1"), _at("J1", 1.0).encode()),
            (topics.gateway_status("clinic", "gw-1"), status.encode()),
            (topics.traffic_aggregate("J2"), _at("J2", 1.0).encode()),
            (topics.traffic_aggregate("J1"), _at("J1", 2.0).encode()),
            (topics.traffic_aggregate("J1"), b"{broken"),
        ]
    )
    assert batches == [[("J1", 1.0), ("J2", 1.0), ("J1", 2.0)]]
    assert published == [("plan/J1", b"p", True)]
    assert core.counts["status"] == 1 and core.counts["rejected"] == 1


def test_an_aggregate_older_than_one_already_handled_is_dropped_and_counted(tmp_path):
    seen: list[float] = []

    def forward(topic: str, payload: bytes):
        seen.append(TrafficAggregate.model_validate_json(payload).interval_start)
        return []

    core, _, _ = _core(tmp_path, forward=forward)
    for start in (5.0, 10.0, 5.0, 15.0):  # the second 5.0 is a late redelivery's backlog
        core.handle(topics.traffic_aggregate("J1"), _at("J1", start).encode())
    core.handle(topics.traffic_aggregate("J2"), _at("J2", 5.0).encode())  # other junction: fine
    assert seen == [5.0, 10.0, 15.0, 5.0]
    assert core.counts["stale"] == 1


def test_fast_decode_accepts_what_decode_accepts_and_refuses_the_rest_with_its_error():
    from cloud.bridge_core import fast_decode
    from shared.errors import SchemaError
    from shared.messages import decode

    good = _at("J1", 3.0).encode()
    assert fast_decode(good, TrafficAggregate) == decode(good, TrafficAggregate)
    no_version = _at("J1", 3.0).model_dump()
    del no_version["schema_version"]
    for bad, error in (
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (json.dumps(no_version).encode(), "schema_version is None"),
        (good.replace(b'"schema_version":1', b'"schema_version":2'), "schema_version is 2"),
        (good.replace(b'"junction_id":"J1"', b'"junction_id":7'), "junction_id"),
    ):
        with pytest.raises(SchemaError, match=error):
            fast_decode(bad, TrafficAggregate)


def test_junction_rounds_keep_each_junctions_order_and_spread_the_rest():
    from cloud.bridge_core import junction_rounds

    arrivals = [("J1", 1.0), ("J2", 1.0), ("J1", 2.0), ("J3", 1.0), ("J1", 3.0), ("J2", 2.0)]
    batch = [(topics.traffic_aggregate(j), _at(j, t).encode(), _at(j, t)) for j, t in arrivals]
    rounds = junction_rounds(batch)
    named = [
        [
            (
                topics.parse_traffic_aggregate(topic),
                TrafficAggregate.model_validate_json(p).interval_start,
            )
            for topic, p in r
        ]
        for r in rounds
    ]
    assert named == [
        [("J1", 1.0), ("J2", 1.0), ("J3", 1.0)],
        [("J1", 2.0), ("J2", 2.0)],
        [("J1", 3.0)],
    ]
    assert junction_rounds([]) == []
