"""Round 1's cloud bridge, kept as `bench mqtt`'s "today's" reference (issue 17's 5x bar).

What the bridge did per aggregate before replicas and batching (git show 6a82188:cloud/bridge.py):
one client holding the whole subscription, paho's automatic QoS 1 ack, and in paho's loop thread,
one message at a time, `shared.messages.decode` (the full pydantic path), the topic-vs-payload
junction check, then one blocking hand-over to the coordinator (a Serve handle call). Here the
hand-over is a `Handover`: a real round trip to another process carrying the messages, one per
aggregate for round 1 and one per batch for today's bridge (`BridgeSink`), then the aggregate is
recorded. A Serve handle call costs more than a pipe round trip, so round 1 is flattered.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import paho.mqtt.client as paho

from shared import topics
from shared.errors import SchemaError
from shared.messages import TrafficAggregate, decode


def _coordinator(conn: Connection) -> None:
    """The other side of the hand-over: takes the messages, answers (as `ingest` returns)."""
    while (msg := conn.recv()) is not None:
        conn.send(len(msg))


class Handover:
    """A blocking call into another process per hand-over, serialised like one handle's calls."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_coordinator, args=(child,), daemon=True)
        self._proc.start()
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, messages: list[tuple[str, bytes]]) -> None:
        with self._lock:
            self._conn.send(messages)
            self._conn.recv()
            self.calls += 1

    def close(self) -> None:
        with self._lock:
            self._conn.send(None)
        self._proc.join(timeout=10)


@dataclass
class Round1Sink:
    """Round 1's `_on_message` -> `BridgeCore._aggregate` -> forward, per message."""

    arrivals: dict[str, float] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    bad: list[str] = field(default_factory=list)
    spoofed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    handover: Handover | None = None

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
        if self.handover is not None:
            self.handover([(topic, payload)])
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
