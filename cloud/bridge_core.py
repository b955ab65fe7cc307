"""The bridge's routing, without Ray: status -> nodes, edge verdicts kept, aggregates forwarded.

Messages are handled a batch at a time (`handle_batch`), in arrival order, so a batch costs one
hand-over to the coordinator instead of one blocking call per message. Nothing here logs per
message on the happy path. The broker's ACL vouches for the ids in the topic, never for those in
the payload: a payload naming another gateway, site or junction is refused and counted.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import ValidationError

from cloud.store import SqliteStore
from shared import topics
from shared.errors import SchemaError
from shared.messages import GatewayStatus, ScanVerdictEvent, TrafficAggregate, decode
from shared.messages.base import Message
from shared.verdicts import Verdict

log = logging.getLogger("ray.serve")
CLIENT_ID = "edgeward-cloud-bridge"
SEEN_LIMIT = 50_000
Outgoing = list[tuple[str, bytes, bool]]
# What the coordinator gets per batch: the raw message and its decoded, identity-checked form.
AggregateBatch = list[tuple[str, bytes, TrafficAggregate]]
Publish = Callable[[str, bytes, bool], None]
Forward = Callable[[str, bytes], Outgoing]
ForwardBatch = Callable[[AggregateBatch], Outgoing]

_STATUS = f"{topics.ROOT}/status/"
_CLINIC = f"{topics.ROOT}/clinic/"
_TRAFFIC = f"{topics.ROOT}/traffic/"


M = TypeVar("M", bound=Message)


def fast_decode(payload: bytes, cls: type[M]) -> M:
    """`decode`, about twice as fast on good payloads: pydantic parses the JSON itself.

    Anything the fast path does not accept as plainly valid (a parse or validation error, a
    missing or other schema_version) goes through `decode`, which raises its clear SchemaError.
    """
    try:
        message = cls.model_validate_json(payload)
    except ValidationError:
        return decode(payload, cls)
    if (
        "schema_version" in message.model_fields_set
        and message.schema_version == cls.SCHEMA_VERSION
    ):
        return message
    return decode(payload, cls)


def junction_rounds(batch: AggregateBatch) -> list[list[tuple[str, bytes]]]:
    """Split a batch into rounds: round k holds each junction's k-th aggregate, in arrival order.

    A round's calls may run concurrently (different junctions); rounds run one after another, so
    each junction's aggregates reach the coordinator, and its plans come back, in order.
    """
    rounds: list[list[tuple[str, bytes]]] = []
    seen: dict[str, int] = {}
    for topic, payload, agg in batch:
        k = seen.get(agg.junction_id, 0)
        seen[agg.junction_id] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append((topic, payload))
    return rounds


class _Seen:
    """Bounded memory of handled message ids (QoS 1 redelivers after a reconnect)."""

    def __init__(self, limit: int = SEEN_LIMIT) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, message_id: str) -> bool:
        """True if new."""
        if message_id in self._ids:
            return False
        self._ids[message_id] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True


class BridgeCore:
    """Routing without Ray: `forward`/`forward_batch` and `tick` are callables (Serve handles in
    production). `forward_batch`, when given, gets every accepted aggregate of a batch at once."""

    def __init__(
        self,
        store: SqliteStore,
        publish: Publish,
        forward: Forward | None = None,
        tick: Callable[[float], Outgoing] | None = None,
        forward_batch: ForwardBatch | None = None,
    ) -> None:
        self.store = store
        self.publish = publish
        self.forward = forward
        self.forward_batch = forward_batch
        self._tick = tick
        self._seen = _Seen()
        # Newest (interval_start, sent_at) handled per junction: an older aggregate arriving later
        # (a redelivery, or a reconnect's backlog) must not replace a newer one's plan.
        self._newest: dict[str, tuple[float, float]] = {}
        # `spoofed`: the payload names another gateway, site or junction than the topic it came on.
        # `stale`: an aggregate older than one already handled for its junction.
        self.counts: dict[str, int] = {
            "status": 0,
            "verdict": 0,
            "aggregate": 0,
            "rejected": 0,
            "spoofed": 0,
            "stale": 0,
            "batches": 0,
        }

    def handle(self, topic: str, payload: bytes) -> None:
        self.handle_batch([(topic, payload)])

    def handle_batch(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Handle messages in arrival order; aggregates go to the coordinator as one batch."""
        self.counts["batches"] += 1
        aggregates: AggregateBatch = []
        for topic, payload in messages:
            try:
                if topic.startswith(_TRAFFIC) and topic.endswith("/aggregate"):
                    agg = self._aggregate(topic, payload)
                    if agg is not None:
                        aggregates.append((topic, payload, agg))
                elif topic.startswith(_STATUS):
                    self._status(topic, payload)
                elif topic.startswith(_CLINIC) and topic.endswith("/verdict"):
                    self._verdict(topic, payload)
            except SchemaError as exc:
                self.counts["rejected"] += 1
                log.warning("bridge: dropped a malformed message on %s: %s", topic, exc)
        if aggregates:
            self._send(aggregates)

    def _send(self, aggregates: AggregateBatch) -> None:
        if self.forward_batch is not None:
            out = self.forward_batch(aggregates)
        elif self.forward is not None:
            out = [o for topic, payload, _ in aggregates for o in self.forward(topic, payload)]
        else:
            return
        for out_topic, out_payload, retain in out:
            self.publish(out_topic, out_payload, retain)

    def _refuse(self, topic: str, field: str, claimed: str, authenticated: str | None) -> None:
        self.counts["spoofed"] += 1
        log.warning(
            "bridge: refused a message on %s: payload %s %r disagrees with the topic's %r",
            topic,
            field,
            claimed,
            authenticated,
        )

    def _status(self, topic: str, payload: bytes) -> None:
        if not payload:  # a cleared retained status
            return
        status = fast_decode(payload, GatewayStatus)
        ids = topics.parse_gateway_status(topic)
        if ids is None or ids != (status.kind, status.gateway_id):
            claimed = f"{status.kind}/{status.gateway_id}"
            self._refuse(topic, "kind/gateway_id", claimed, "/".join(ids) if ids else None)
            return
        if not self._seen.add(status.message_id):
            return
        self.counts["status"] += 1
        kind, gateway_id = ids
        self.store.upsert(
            gateway_id,
            kind=kind,
            state=status.state,
            detail=status.detail,
            outbox_depth=status.outbox_depth,
            message_id=status.message_id,
        )
        log.info("bridge: gateway %s (%s) is %s", status.gateway_id, status.kind, status.state)

    def _verdict(self, topic: str, payload: bytes) -> None:
        event = fast_decode(payload, ScanVerdictEvent)
        ids = topics.parse_clinic_verdict(topic)
        if ids is None or ids[0] != event.site_id:
            self._refuse(topic, "site_id", event.site_id, ids[0] if ids else None)
            return
        if event.source != "edge" or not self._seen.add(event.message_id):
            return  # our own echo, or a redelivery
        self.counts["verdict"] += 1
        self.store.record_edge_verdict(
            event.scan_id,
            site_id=event.site_id,
            message_id=event.message_id,
            verdict=event.verdict.value,
            confidence=event.confidence,
            event=event.model_dump_json(),
        )
        result = self.store.get(event.scan_id)
        if result is not None:  # the cloud already graded it: tell the gateway's subscribers
            reply = ScanVerdictEvent(
                sender=CLIENT_ID,
                scan_id=event.scan_id,
                site_id=event.site_id,
                verdict=Verdict(result.verdict),
                confidence=result.confidence,
                source="cloud",
                model_versions={"grader": result.model_version},
            )
            self.publish(topic, reply.encode(), False)

    def _aggregate(self, topic: str, payload: bytes) -> TrafficAggregate | None:
        aggregate = fast_decode(payload, TrafficAggregate)
        junction = topics.parse_traffic_aggregate(topic)
        if junction != aggregate.junction_id:
            self._refuse(topic, "junction_id", aggregate.junction_id, junction)
            return None
        stamp = (aggregate.interval_start, aggregate.sent_at)
        newest = self._newest.get(junction)
        if newest is not None and stamp < newest:
            self.counts["stale"] += 1
            return None
        self._newest[junction] = stamp
        self.counts["aggregate"] += 1
        return aggregate

    def tick(self, now: float) -> None:
        if self._tick is None:
            return
        for out_topic, out_payload, retain in self._tick(now):
            self.publish(out_topic, out_payload, retain)
