"""The MQTT topic tree. Every topic is built here, so the tree can be versioned in one place."""

from __future__ import annotations

from urllib.parse import quote

ROOT = "edgeward/v1"


def segment(value: str) -> str:
    """One topic level; ids from real networks may hold '/', '+' or '#', which MQTT reserves."""
    if not value:
        raise ValueError("topic segment is empty; give a non-empty id")
    return quote(value, safe="-_.:~@")


def clinic_verdict(site_id: str, gateway_id: str) -> str:
    return f"{ROOT}/clinic/{segment(site_id)}/{segment(gateway_id)}/verdict"


def gateway_status(kind: str, gateway_id: str) -> str:
    """Retained; the gateway's Last Will publishes `offline` here."""
    return f"{ROOT}/status/{segment(kind)}/{segment(gateway_id)}"


def traffic_aggregate(junction_id: str) -> str:
    return f"{ROOT}/traffic/{segment(junction_id)}/aggregate"


def traffic_plan(junction_id: str) -> str:
    """Retained, with an expiry inside the payload."""
    return f"{ROOT}/traffic/{segment(junction_id)}/plan"


def traffic_mode(junction_id: str) -> str:
    return f"{ROOT}/traffic/{segment(junction_id)}/mode"


def model_update(kind: str, gateway_id: str) -> str:
    return f"{ROOT}/models/{segment(kind)}/{segment(gateway_id)}"


def model_update_ack(kind: str, gateway_id: str) -> str:
    """A gateway's answer to a model update: applied or refused, and why."""
    return f"{ROOT}/models/{segment(kind)}/{segment(gateway_id)}/ack"


def all_model_update_acks(kind: str) -> str:
    """Subscription filter for every gateway's model update acks of one kind."""
    return f"{ROOT}/models/{segment(kind)}/+/ack"


def alert(kind: str) -> str:
    return f"{ROOT}/alerts/{segment(kind)}"


# Subscription filters for the cloud side.
ALL_CLINIC_VERDICTS = f"{ROOT}/clinic/+/+/verdict"
ALL_STATUS = f"{ROOT}/status/#"
ALL_TRAFFIC_AGGREGATES = f"{ROOT}/traffic/+/aggregate"
ALL_TRAFFIC_MODES = f"{ROOT}/traffic/+/mode"
