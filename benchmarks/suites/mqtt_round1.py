"""Round 1's cloud bridge, kept as `bench mqtt`'s "today's" reference (issue 17's 5x bar).

What the bridge did per aggregate before replicas and batching (git show 6a82188:cloud/bridge.py):
one client holding the whole subscription, paho's automatic QoS 1 ack, and in paho's loop thread,
one message at a time, `shared.messages.decode` (the full pydantic path), the topic-vs-payload
junction check, then one hand-over to the coordinator. The hand-over here records the aggregate,
as `BridgeSink` does for today's bridge, so both are measured up to the same point.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as paho

from shared import topics
from shared.errors import SchemaError
from shared.messages import TrafficAggregate, decode


@dataclass
class Round1Sink:
    """Round 1's `_on_message` -> `BridgeCore._aggregate` -> forward, per message."""

    arrivals: dict[str, float] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    bad: list[str] = field(default_factory=list)
    spoofed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        topic, payload = msg.topic, bytes(msg.payload)
        try:
            aggregate = decode(payload, TrafficAggregate)
        except SchemaError as exc:
            self.bad.append(str(exc))
            return
        if topics.parse_traffic_aggregate(topic) != aggregate.junction_id:
            self.spoofed += 1
            return
        self._forward(aggregate)

    def _forward(self, agg: TrafficAggregate) -> None:
        now = time.time()
        with self.lock:
            if agg.message_id in self.arrivals:
                self.duplicates += 1
                return
            self.arrivals[agg.message_id] = now
            self.sent_at[agg.message_id] = agg.sent_at

    def settle(self) -> None:
        return None

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)
