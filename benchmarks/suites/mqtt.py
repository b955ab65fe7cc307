"""`bench mqtt`: simulated gateways publish QoS 1 aggregates through a real mosquitto.

A subscriber standing for the cloud bridge decodes every message; edge-to-cloud latency is its
receive time minus the sender's `sent_at` (same host, same clock). Loss must be zero at QoS 1.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from tqdm import tqdm

from benchmarks.memory import PeakRss
from benchmarks.results import BenchRun
from benchmarks.stats import summarize_ms, thin
from shared import topics
from shared.broker import MosquittoBroker
from shared.config.base import MqttSettings
from shared.errors import EdgewardError
from shared.messages import ApproachCount, TrafficAggregate, decode
from shared.mqtt import QOS, make_client


@dataclass(frozen=True)
class MqttPlan:
    gateways: tuple[int, ...] = (1, 10, 50, 100)
    messages_per_gateway: int = 100
    rate_hz: float = 20.0  # per gateway; an aggregate per interval is far rarer, this is stress
    warmup_per_gateway: int = 5
    saturate_per_gateway: int = 200  # unpaced burst: the broker path's capacity
    drain_timeout_s: float = 60.0

    @classmethod
    def quick(cls) -> MqttPlan:
        return cls(
            gateways=(2, 5),
            messages_per_gateway=20,
            rate_hz=50.0,
            warmup_per_gateway=2,
            saturate_per_gateway=50,
        )


@dataclass
class Bridge:
    """The cloud side: records arrival time per message id (duplicates counted apart)."""

    arrivals: dict[str, float] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    bad: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        now = time.time()
        try:
            agg = decode(bytes(msg.payload), TrafficAggregate)
        except EdgewardError as exc:
            self.bad.append(str(exc))
            return
        with self.lock:
            if agg.message_id in self.arrivals:
                self.duplicates += 1
                return
            self.arrivals[agg.message_id] = now
            self.sent_at[agg.message_id] = agg.sent_at

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


def _connected(client: paho.Client, settings: MqttSettings, timeout: float = 10.0) -> None:
    ready = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: ready.set() if not rc.is_failure else None
    client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    client.loop_start()
    if not ready.wait(timeout):
        raise EdgewardError(
            f"mqtt bench: client {client._client_id!r} got no CONNACK from "
            f"{settings.host}:{settings.port} within {timeout}s; is the broker up?"
        )


def _aggregate(gateway: str, seq: int) -> TrafficAggregate:
    now = time.time()
    return TrafficAggregate(
        sender=gateway,
        junction_id=gateway,
        interval_start=now - 1.0,
        interval_s=1.0,
        approaches=[
            ApproachCount(approach_id=a, queue=float(seq % 7), approaching=float(seq % 5))
            for a in ("N", "E", "S", "W")
        ],
        mode="coordinated",
    )


def _publish_paced(
    client: paho.Client, gateway: str, count: int, rate_hz: float, sent: list[str]
) -> None:
    period = 1.0 / rate_hz if rate_hz > 0 else 0.0  # 0: as fast as the client takes them
    start = time.perf_counter()
    for seq in range(count):
        delay = start + seq * period - time.perf_counter()
        if period and delay > 0:
            time.sleep(delay)
        msg = _aggregate(gateway, seq)
        info = client.publish(topics.traffic_aggregate(gateway), msg.encode(), qos=QOS)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise EdgewardError(f"mqtt bench: {gateway} publish failed with rc={info.rc}")
        sent.append(msg.message_id)


def _round(
    clients: dict[str, paho.Client], bridge: Bridge, count: int, rate_hz: float, timeout_s: float
) -> tuple[list[str], float, float]:
    """Every gateway publishes `count` messages at `rate_hz`; wait until the bridge has them."""
    sent: dict[str, list[str]] = {g: [] for g in clients}
    threads = [
        threading.Thread(target=_publish_paced, args=(c, g, count, rate_hz, sent[g]), daemon=True)
        for g, c in clients.items()
    ]
    began = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for g in sent.values() for i in g]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with bridge.lock:
            if all(i in bridge.arrivals for i in ids):
                break
        time.sleep(0.01)
    with bridge.lock:
        last = max((bridge.arrivals[i] for i in ids if i in bridge.arrivals), default=began)
    return ids, began, last


def run_mqtt(run: BenchRun, plan: MqttPlan) -> None:
    """Sweep the number of gateways; one result per size (latency, msgs/s, loss)."""
    with MosquittoBroker(persistence=False) as broker:
        settings = MqttSettings(host=broker.host, port=broker.port)
        run.sections["broker"] = {"host": broker.host, "port": broker.port, "qos": QOS}
        bridge = Bridge()
        sub = make_client(settings, "bench-cloud-bridge")
        sub.on_message = bridge.on_message
        _connected(sub, settings)
        subscribed = threading.Event()
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.subscribe(topics.ALL_TRAFFIC_AGGREGATES, qos=QOS)
        if not subscribed.wait(10):
            raise EdgewardError("mqtt bench: the bridge's SUBSCRIBE was not acknowledged in 10 s")
        try:
            for n in tqdm(plan.gateways, desc="mqtt gateways", unit="size"):
                _one_size(run, plan, settings, bridge, n)
        finally:
            sub.disconnect()
            sub.loop_stop()
        if bridge.bad:
            run.sections["undecodable"] = bridge.bad[:20]
    rows = [r for r in run.results if r["suite"] == "mqtt"]
    paced = [r for r in rows if r["params"]["phase"] == "paced"]
    saturated = [r for r in rows if r["params"]["phase"] == "saturated"]
    # Latency means something only where the path kept up with the offered rate; past that
    # point it measures the queue that builds up (in this process as much as in the broker).
    kept_up = [r for r in paced if r["metrics"]["kept_up"]]
    for label, group in (("kept up", kept_up), ("largest", paced)):
        if not group:
            continue
        big = max(group, key=lambda r: r["params"]["gateways"])
        n = big["params"]["gateways"]
        key = f"edge-to-cloud latency ms, {n} gateways paced ({label})"
        if key.replace("(largest)", "(kept up)") in run.headline:
            continue
        run.headline[key] = (
            f"p50 {big['latency_ms']['p50']:.2f}, p99 {big['latency_ms']['p99']:.2f}"
        )
    if saturated:
        best = max(saturated, key=lambda r: r["throughput"]["value"])
        run.headline["most messages/s (saturated)"] = round(best["throughput"]["value"], 1)
        run.headline["at gateways"] = best["params"]["gateways"]
    run.headline["lost messages (all runs, must be 0)"] = sum(r["metrics"]["lost"] for r in rows)
    run.headline["duplicates delivered (QoS 1 allows)"] = sum(
        r["metrics"]["duplicates"] for r in rows
    )


def _one_size(
    run: BenchRun, plan: MqttPlan, settings: MqttSettings, bridge: Bridge, n: int
) -> None:
    clients: dict[str, paho.Client] = {}
    try:
        for i in range(n):
            gateway = f"bench-gw-{n}-{i}"
            client = make_client(settings, gateway)
            client.max_queued_messages_set(0)  # unbounded: QoS 1 must never drop
            _connected(client, settings)
            clients[gateway] = client
        warm_ids, _, _ = _round(
            clients, bridge, plan.warmup_per_gateway, plan.rate_hz, plan.drain_timeout_s
        )
        warm = [bridge.arrivals[i] - bridge.sent_at[i] for i in warm_ids if i in bridge.arrivals]
        for label, count, rate in (
            ("paced", plan.messages_per_gateway, plan.rate_hz),
            ("saturated", plan.saturate_per_gateway, 0.0),
        ):
            if count <= 0:
                continue
            dup_before = bridge.duplicates
            with PeakRss() as mem:
                ids, began, last = _round(clients, bridge, count, rate, plan.drain_timeout_s)
            _record(
                run,
                bridge=bridge,
                n=n,
                label=label,
                count=count,
                rate=rate,
                ids=ids,
                began=began,
                last=last,
                warm=warm,
                mem=mem,
                dup_before=dup_before,
            )
    finally:
        for client in clients.values():
            client.disconnect()  # first: the network loop then ends without waiting a tick
        for client in clients.values():
            client.loop_stop()


def _record(
    run: BenchRun,
    *,
    bridge: Bridge,
    n: int,
    label: str,
    count: int,
    rate: float,
    ids: list[str],
    began: float,
    last: float,
    warm: list[float],
    mem: PeakRss,
    dup_before: int,
) -> None:
    with bridge.lock:
        got = [i for i in ids if i in bridge.arrivals]
        lat = [bridge.arrivals[i] - bridge.sent_at[i] for i in got]
        duplicates = bridge.duplicates - dup_before
    if not lat:
        raise EdgewardError(f"mqtt bench: none of {len(ids)} messages from {n} gateways arrived")
    record: dict[str, Any] = {
        "latency_ms": summarize_ms(lat),
        "throughput": {"value": len(got) / max(last - began, 1e-9), "unit": "messages/s"},
        "warmup": {
            "iterations": len(warm),
            "first_ms": warm[0] * 1e3 if warm else 0.0,
            "mean_ms": sum(warm) / len(warm) * 1e3 if warm else 0.0,
        },
        "iterations": len(lat),
        "stop_reason": "fixed_count",
        "stable": True,
        "memory": mem.as_dict(),
        "samples_ms": thin([v * 1e3 for v in lat]),
    }
    run.add(
        f"mqtt/{n}-gateways-{label}",
        record,
        params={
            "gateways": n,
            "phase": label,
            "messages_per_gateway": count,
            "rate_hz_per_gateway": rate or "unpaced",
            "qos": QOS,
        },
        metrics={
            "sent": len(ids),
            "received": len(got),
            "lost": len(ids) - len(got),
            "duplicates": duplicates,
            "offered_messages_per_s": n * rate if rate else None,
            # the path delivered at least 95 % of the offered rate (paced phase only)
            "kept_up": bool(rate) and len(got) / max(last - began, 1e-9) >= 0.95 * n * rate,
        },
        curve=("gateways", f"QoS 1 via mosquitto, {label}", n),
    )
