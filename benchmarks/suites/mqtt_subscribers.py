"""The two subscribers `bench mqtt` compares on one broker: a plain paho client and the bridge.

Both keep a persistent session so they can be paused: the gateways then build a backlog on the
broker, and the drain after `resume()` measures how fast the subscriber alone takes messages,
with no publisher competing for the CPU.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks.suites.mqtt_replicas import Arrived, ReplicaProcesses
from benchmarks.suites.mqtt_round1 import Handover, Round1Sink
from cloud.bridge_client import BridgeClient
from cloud.bridge_core import AggregateBatch, BridgeCore, Outgoing
from cloud.store import SqliteStore
from shared import topics
from shared.config.base import MqttSettings
from shared.errors import EdgewardError
from shared.messages import TrafficAggregate, decode
from shared.mqtt import QOS, make_client

SESSION_EXPIRY_S = 600
SUBACK_TIMEOUT_S = 10.0


@dataclass
class PlainSink:
    """A bare paho client that only keeps (arrival time, payload): decoding waits for `settle`."""

    raw: list[tuple[float, bytes | bytearray]] = field(default_factory=list)
    arrivals: dict[str, float] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    bad: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        self.raw.append((time.time(), msg.payload))

    def settle(self) -> None:
        """Decode what arrived so far (outside the measured path) into arrivals by message id."""
        raw, self.raw = self.raw, []
        with self.lock:
            for now, payload in raw:
                try:
                    agg = decode(bytes(payload), TrafficAggregate)
                except EdgewardError as exc:
                    self.bad.append(str(exc))
                    continue
                if agg.message_id in self.arrivals:
                    self.duplicates += 1
                    continue
                self.arrivals[agg.message_id] = now
                self.sent_at[agg.message_id] = agg.sent_at

    def count(self) -> int:
        return len(self.arrivals) + len(self.raw)


@dataclass
class BridgeSink:
    """The bridge replicas' coordinator stand-in: records each aggregate handed over."""

    arrivals: dict[str, float] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    bad: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    handover: Handover | None = None

    def forward_batch(self, batch: AggregateBatch) -> Outgoing:
        if self.handover is not None:  # one call to the coordinator per batch
            self.handover([(topic, payload) for topic, payload, _ in batch])
        self.record([(agg.message_id, agg.sent_at) for _, _, agg in batch])
        return []

    def record(self, arrived: Arrived) -> None:
        """The coordinator got these (message_id, sent_at), now."""
        now = time.time()
        with self.lock:
            for message_id, sent_at in arrived:
                if message_id in self.arrivals:
                    self.duplicates += 1
                    continue
                self.arrivals[message_id] = now
                self.sent_at[message_id] = sent_at

    def settle(self) -> None:
        return None

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


KINDS = ("plain", "round1", "bridge")
REPLICAS_AS = ("processes", "threads")


class Subscriber:
    """One kind of subscriber on the broker (`plain`, `round1`: round 1's single bridge, or
    `bridge`: today's replicas, each in its own process as Serve runs them, or as threads of this
    process); `sink` is what it records."""

    def __init__(
        self,
        kind: str,
        settings: MqttSettings,
        tag: str,
        replicas: int,
        scratch: Path,
        *,
        replicas_as: str = "processes",
    ) -> None:
        if kind not in KINDS:
            raise EdgewardError(
                f"mqtt bench: subscriber {kind!r} is unknown; use one of {', '.join(KINDS)}"
            )
        if replicas_as not in REPLICAS_AS:
            raise EdgewardError(
                f"mqtt bench: replicas_as {replicas_as!r} is unknown; "
                f"use one of {', '.join(REPLICAS_AS)}"
            )
        self.kind = kind
        self.settings = settings
        self.tag = tag
        self.sink: PlainSink | Round1Sink | BridgeSink = (
            PlainSink() if kind == "plain" else Round1Sink() if kind == "round1" else BridgeSink()
        )
        processes = kind == "bridge" and replicas_as == "processes"
        # the bridges hand aggregates to a coordinator in another process (for replica processes,
        # this one); the plain client keeps
        self.handover = None if kind == "plain" or processes else Handover()
        if not isinstance(self.sink, PlainSink):
            self.sink.handover = self.handover
        self._plain: paho.Client | None = None
        self._replicas: list[BridgeClient] = []
        self._ids = [f"bench-bridge-{tag}-{i}" for i in range(replicas if kind == "bridge" else 0)]
        self._processes: ReplicaProcesses | None = None
        self.replica_counts: list[dict[str, int]] = []  # per replica process, once closed
        self._process_calls = 0
        if processes and isinstance(self.sink, BridgeSink):
            self._processes = ReplicaProcesses(settings, self._ids, scratch, self.sink.record)
        self._cores = [
            BridgeCore(
                SqliteStore(scratch / f"{kind}-{tag}-r{i}"),
                lambda *_: None,
                forward_batch=self.sink.forward_batch
                if isinstance(self.sink, BridgeSink)
                else None,
            )
            for i in range(len(self._ids) if self._processes is None else 0)
        ]

    def resume(self) -> None:
        """Connect (again, same session ids): a queued backlog starts flowing at once."""
        if isinstance(self.sink, PlainSink | Round1Sink):
            client = make_client(self.settings, f"bench-{self.kind}-{self.tag}")
            client.on_message = self.sink.on_message
            subscribed = threading.Event()
            client.on_connect = lambda c, *_: c.subscribe(topics.ALL_TRAFFIC_AGGREGATES, qos=QOS)
            client.on_subscribe = lambda *_: subscribed.set()
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            client.connect(
                self.settings.host,
                self.settings.port,
                keepalive=self.settings.keepalive_s,
                clean_start=False,
                properties=props,
            )
            client.loop_start()
            self._plain = client
            waits = [subscribed]
        elif self._processes is not None:
            if not self._processes.resume():
                raise EdgewardError(
                    f"mqtt bench: a bridge replica's SUBSCRIBE was not acknowledged; "
                    f"is mosquitto at {self.settings.port} overloaded?"
                )
            waits = []
        else:
            self._replicas = [
                BridgeClient(self.settings, client_id, core)
                for client_id, core in zip(self._ids, self._cores, strict=True)
            ]
            for replica in self._replicas:
                replica.start()
            waits = [r.subscribed for r in self._replicas]
        for event in waits:
            if not event.wait(SUBACK_TIMEOUT_S):
                raise EdgewardError(
                    f"mqtt bench: the {self.kind} SUBSCRIBE was not acknowledged in "
                    f"{SUBACK_TIMEOUT_S:.0f}s; is mosquitto at {self.settings.port} overloaded?"
                )

    @property
    def replica_pids(self) -> list[int]:
        """The bridge replica processes (none when the replicas are threads here)."""
        return self._processes.pids if self._processes is not None else []

    def check(self) -> None:
        """Raise if a bridge replica process has died (its share of the messages waits for it)."""
        if self._processes is not None:
            self._processes.check()

    def pause(self) -> None:
        """Disconnect, keeping the session: the broker queues what arrives meanwhile."""
        if self._plain is not None:
            self._plain.disconnect()
            self._plain.loop_stop()
            self._plain = None
        if self._processes is not None:
            self._processes.pause()
        for replica in self._replicas:
            replica.stop()
        self._replicas = []

    def close(self) -> None:
        """Pause and end the sessions, so the broker queues nothing more for this subscriber."""
        if self._processes is not None:
            self.replica_counts = self._processes.close()
            self._process_calls = self._processes.calls
            self._processes = None
        self.pause()
        if self.handover is not None:
            self.handover.close()
        ids = [f"bench-{self.kind}-{self.tag}"] if self.kind != "bridge" else self._ids
        for client_id in ids:
            client = make_client(self.settings, client_id)
            client.connect(self.settings.host, self.settings.port, clean_start=True)
            client.loop_start()
            deadline = time.monotonic() + SUBACK_TIMEOUT_S
            while not client.is_connected() and time.monotonic() < deadline:
                time.sleep(0.01)
            client.disconnect()
            client.loop_stop()

    def counts(self) -> dict[str, int]:
        """The replicas' `BridgeCore` counts summed, with the hand-over calls to the coordinator."""
        total: dict[str, int] = {}
        for counts in [core.counts for core in self._cores] + self.replica_counts:
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
        if self.handover is not None or self.replica_counts:
            calls = self.handover.calls if self.handover is not None else self._process_calls
            total[f"{self.kind}_handover_calls"] = calls
        return total
