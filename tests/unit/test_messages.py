"""Wire payloads: round trips, and rejections that name the field and the expectation."""

from __future__ import annotations

import json

import pytest

from shared import topics
from shared.errors import SchemaError
from shared.messages import (
    ApproachCount,
    GatewayStatus,
    Message,
    PhaseGreen,
    ScanVerdictEvent,
    SignalPlan,
    TrafficAggregate,
    decode,
)
from shared.verdicts import Verdict


def _plan(**over: object) -> SignalPlan:
    fields: dict[str, object] = {
        "sender": "coordinator",
        "junction_id": "C2",
        "plan_id": "p1",
        "issued_at": 100.0,
        "expires_at": 130.0,
        "cycle_s": 60.0,
        "greens": [PhaseGreen(phase_index=0, green_s=25), PhaseGreen(phase_index=2, green_s=25)],
    }
    fields.update(over)
    return SignalPlan(**fields)


@pytest.mark.parametrize(
    "message",
    [
        ScanVerdictEvent(
            sender="gw-1",
            scan_id="s1",
            site_id="north",
            verdict=Verdict.RETAKE,
            reasons=["out of focus — refocus and retake"],
            confidence=0.9,
        ),
        GatewayStatus(sender="gw-1", gateway_id="gw-1", kind="clinic", state="online"),
        TrafficAggregate(
            sender="tl-C2",
            junction_id="C2",
            interval_start=10.0,
            interval_s=5.0,
            approaches=[ApproachCount(approach_id="north", queue=3, approaching=2)],
            mode="coordinated",
        ),
        _plan(),
    ],
    ids=lambda m: type(m).__name__,
)
def test_every_payload_round_trips_unchanged(message: Message) -> None:
    assert decode(message.encode(), type(message)) == message


def test_payload_carries_version_id_sender_and_time() -> None:
    body = json.loads(
        GatewayStatus(sender="gw", gateway_id="gw", kind="traffic", state="online").encode()
    )
    assert body["schema_version"] == 1
    assert len(body["message_id"]) == 32
    assert body["sender"] == "gw"
    assert body["sent_at"] > 1.7e9


def test_two_messages_get_different_ids() -> None:
    a = GatewayStatus(sender="gw", gateway_id="gw", kind="clinic", state="online")
    b = GatewayStatus(sender="gw", gateway_id="gw", kind="clinic", state="online")
    assert a.message_id != b.message_id


def test_wrong_schema_version_names_both_versions() -> None:
    body = json.loads(_plan().encode())
    body["schema_version"] = 2
    with pytest.raises(SchemaError, match=r"schema_version is 2, expected 1"):
        decode(json.dumps(body), SignalPlan)


def test_missing_field_is_named() -> None:
    body = json.loads(_plan().encode())
    del body["junction_id"]
    with pytest.raises(SchemaError, match=r"SignalPlan: junction_id: Field required"):
        decode(json.dumps(body), SignalPlan)


def test_wrong_type_names_field_and_value() -> None:
    body = json.loads(_plan().encode())
    body["cycle_s"] = "soon"
    with pytest.raises(SchemaError, match=r"cycle_s: .*got 'soon'"):
        decode(json.dumps(body), SignalPlan)


def test_unknown_verdict_is_rejected_with_the_allowed_names() -> None:
    event = ScanVerdictEvent(sender="g", scan_id="s", site_id="x", verdict="refer", confidence=0.5)
    body = json.loads(event.encode())
    body["verdict"] = "fine"
    with pytest.raises(SchemaError, match=r"verdict: .*no_immediate_concern"):
        decode(json.dumps(body), ScanVerdictEvent)


def test_unknown_field_is_rejected() -> None:
    body = json.loads(_plan().encode())
    body["colour"] = "green"
    with pytest.raises(SchemaError, match=r"colour: Extra inputs are not permitted"):
        decode(json.dumps(body), SignalPlan)


def test_plan_expiring_before_issue_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"expires_at \(90.0\) must be after issued_at \(100.0\)"):
        _plan(expires_at=90.0)


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_garbage_payload_is_a_schema_error(payload: bytes) -> None:
    with pytest.raises(SchemaError, match="SignalPlan"):
        decode(payload, SignalPlan)


def test_topics_are_versioned_and_escape_reserved_characters() -> None:
    assert topics.traffic_plan("C2") == "edgeward/v1/traffic/C2/plan"
    escaped = topics.traffic_aggregate("cluster/1+2#3")
    assert escaped == "edgeward/v1/traffic/cluster%2F1%2B2%233/aggregate"
    with pytest.raises(ValueError, match="empty"):
        topics.gateway_status("clinic", "")
