"""The MQTT topic tree. Every topic is built here, so the tree can be versioned in one place."""

from __future__ import annotations

from urllib.parse import quote, unquote

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


def _levels(topic: str, prefix: str, n: int, suffix: str | None) -> list[str] | None:
    """The `n` id levels of `ROOT/prefix/<ids...>[/suffix]`, unquoted; None if another shape."""
    parts = topic.split("/")
    head = [*ROOT.split("/"), *prefix.split("/")]
    tail = [suffix] if suffix else []
    if len(parts) != len(head) + n + len(tail) or parts[: len(head)] != head:
        return None
    if tail and parts[-1] != suffix:
        return None
    ids = parts[len(head) : len(head) + n]
    return [unquote(i) for i in ids] if all(ids) else None


# The broker's ACL lets a client write only under its own id, so the ids in a topic it wrote are
# authenticated; the ids inside the payload are whatever the sender typed. These give the former.
def parse_gateway_status(topic: str) -> tuple[str, str] | None:
    """(kind, gateway_id) of a status topic, or None."""
    ids = _levels(topic, "status", 2, None)
    return (ids[0], ids[1]) if ids else None


def parse_clinic_verdict(topic: str) -> tuple[str, str] | None:
    """(site_id, gateway_id) of a verdict topic, or None."""
    ids = _levels(topic, "clinic", 2, "verdict")
    return (ids[0], ids[1]) if ids else None


def parse_traffic_aggregate(topic: str) -> str | None:
    """The junction id of an aggregate topic, or None."""
    ids = _levels(topic, "traffic", 1, "aggregate")
    return ids[0] if ids else None
