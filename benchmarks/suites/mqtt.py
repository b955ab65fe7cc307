"""`bench mqtt`: simulated gateways publish QoS 1 aggregates through a real mosquitto.

Three subscribers are measured in the same run, one after the other, on the same broker and the
same publishers: a plain paho client that only keeps what arrives (mosquitto's own ceiling here),
round 1's single bridge (`mqtt_round1.py`, "today's" in issue 17), then the cloud bridge's
replicas (cloud/bridge_client.py on an MQTT v5 shared subscription, with the real `BridgeCore`:
decode, identity-from-topic check, per-junction order, batch hand-over), each in its own process
as Serve runs them (`mqtt_replicas.py`; `--replicas-as threads` keeps them in this one). Latency is
the receive time minus the sender's `sent_at` (same host, same clock). Loss must be zero at QoS 1.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.memory import PeakRss
from benchmarks.results import BenchRun
from benchmarks.stats import summarize_ms, thin
from benchmarks.suites.mqtt_gateways import GatewayPool
from benchmarks.suites.mqtt_subscribers import Subscriber
from shared import topics
from shared.broker import MosquittoBroker
from shared.config.base import MqttSettings
from shared.errors import EdgewardError
from shared.mqtt import QOS

SUBSCRIBERS = ("plain", "round1", "bridge")


@dataclass(frozen=True)
class MqttPlan:
    gateways: tuple[int, ...] = (1, 10, 50, 100)
    messages_per_gateway: int = 100
    rate_hz: float = 20.0  # per gateway; an aggregate per interval is far rarer, this is stress
    warmup_per_gateway: int = 5
    saturate_per_gateway: int = 200  # unpaced burst: the broker path's capacity
    drain_timeout_s: float = 60.0
    replicas: int = 2  # bridge replicas on the shared subscription
    replicas_as: str = "processes"  # as Serve runs them; "threads": all in the bench process
    publisher_processes: int = 2  # the gateways run in these worker processes
    # Published while the subscriber is away, then drained: the subscriber's own capacity.
    backlog_per_gateway: int = 200

    @classmethod
    def quick(cls) -> MqttPlan:
        return cls(
            gateways=(2, 5),
            messages_per_gateway=20,
            rate_hz=50.0,
            warmup_per_gateway=2,
            saturate_per_gateway=50,
            backlog_per_gateway=50,
        )


def _wait(sub: Subscriber, ids: list[str], target: int, began: float, timeout_s: float) -> float:
    """Wait until the sink has every id; the last arrival time (or `began` if none came)."""
    sink = sub.sink
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sub.check()  # a dead replica's share waits on the broker: say so, never call it lost
        if sink.count() >= target:
            sink.settle()
            with sink.lock:
                if all(i in sink.arrivals for i in ids):
                    break
        time.sleep(0.01)
    sink.settle()
    with sink.lock:
        return max((sink.arrivals[i] for i in ids if i in sink.arrivals), default=began)


def _round(
    pool: GatewayPool, sub: Subscriber, count: int, rate_hz: float, timeout_s: float
) -> tuple[list[str], float, float]:
    """Every gateway publishes `count` messages at `rate_hz`; wait until the sink has them."""
    target = sub.sink.count() + count * pool.size
    ids, began = pool.round(count, rate_hz, timeout_s)
    return ids, began, _wait(sub, ids, target, began, timeout_s)


def _drain(
    pool: GatewayPool, sub: Subscriber, count: int, timeout_s: float
) -> tuple[list[str], float, float]:
    """The subscriber away, every gateway publishes `count`; then time the backlog's drain."""
    sub.pause()
    target = sub.sink.count() + count * pool.size
    ids, _ = pool.round(count, 0.0, timeout_s)  # returns once the broker acknowledged them all
    began = time.time()
    sub.resume()
    return ids, began, _wait(sub, ids, target, began, timeout_s)


def run_mqtt(run: BenchRun, plan: MqttPlan) -> None:
    """Sweep the number of gateways; per size, the plain subscriber then the bridge."""
    with MosquittoBroker(persistence=False) as broker:
        settings = MqttSettings(host=broker.host, port=broker.port)
        run.sections["broker"] = {"host": broker.host, "port": broker.port, "qos": QOS}
        run.sections["bridge"] = {
            "replicas": plan.replicas,
            "subscription": "$share/edgeward-bridge/" + topics.ALL_TRAFFIC_AGGREGATES,
            "replicas_run_as": (
                "a worker process each, handing batches to the bench process"
                if plan.replicas_as == "processes"
                else "threads of the bench process"
            )
            + "; gateways in worker processes",
        }
        bad: list[str] = []
        batches: dict[str, int] = {}
        for n in tqdm(plan.gateways, desc="mqtt gateways", unit="size"):
            _one_size(run, plan, settings, n, bad=bad, batches=batches)
        if bad:
            run.sections["undecodable"] = bad[:20]
        run.sections["bridge"]["core_counts"] = batches
    _headline(run)


def _headline(run: BenchRun) -> None:
    rows = [r for r in run.results if r["suite"] == "mqtt"]
    bridge = [r for r in rows if r["params"]["subscriber"] == "bridge"]
    plain = [r for r in rows if r["params"]["subscriber"] == "plain"]
    round1 = [r for r in rows if r["params"]["subscriber"] == "round1"]
    paced = [r for r in bridge if r["params"]["phase"] == "paced"]
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
    for phase, what in (("saturated", "gateways unpaced"), ("drain", "draining a backlog")):
        best: dict[str, float] = {}
        for name, group in (
            ("bridge", bridge),
            ("plain subscriber", plain),
            ("round-1 bridge", round1),
        ):
            rows_ = [r for r in group if r["params"]["phase"] == phase]
            if rows_:
                top = max(rows_, key=lambda r: r["throughput"]["value"])
                best[name] = top["throughput"]["value"]
                gw = top["params"]["gateways"]
                run.headline[f"{name} most messages/s ({what}, {gw} gateways)"] = round(
                    best[name], 1
                )
        if "bridge" in best and best.get("plain subscriber"):
            run.headline[f"bridge / plain subscriber messages/s, {what} (same run)"] = round(
                best["bridge"] / best["plain subscriber"], 3
            )
        if "bridge" in best and best.get("round-1 bridge"):
            run.headline[f"bridge / round-1 bridge messages/s, {what} (same run)"] = round(
                best["bridge"] / best["round-1 bridge"], 3
            )
    run.headline["lost messages (all runs, must be 0)"] = sum(r["metrics"]["lost"] for r in rows)
    run.headline["duplicates delivered (QoS 1 allows)"] = sum(
        r["metrics"]["duplicates"] for r in rows
    )


def _one_size(
    run: BenchRun,
    plan: MqttPlan,
    settings: MqttSettings,
    n: int,
    *,
    bad: list[str],
    batches: dict[str, int],
) -> None:
    names = [f"bench-gw-{n}-{i}" for i in range(n)]
    pool = GatewayPool(settings, names, plan.publisher_processes)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as scratch:
            for kind in SUBSCRIBERS:
                sub = Subscriber(
                    kind,
                    settings,
                    f"{n}",
                    plan.replicas,
                    Path(scratch),
                    replicas_as=plan.replicas_as,
                )
                sub.resume()
                try:
                    _phases(run, plan, pool, sub, n)
                finally:
                    sub.close()
                bad.extend(sub.sink.bad)
                if sub.replica_counts:  # how the shared subscription split the load
                    run.sections["bridge"].setdefault("aggregates_per_replica", {})[str(n)] = [
                        c.get("aggregate", 0) for c in sub.replica_counts
                    ]
                for k, v in sub.counts().items():
                    batches[k] = batches.get(k, 0) + v
    finally:
        pool.close()


def _phases(run: BenchRun, plan: MqttPlan, pool: GatewayPool, sub: Subscriber, n: int) -> None:
    sink = sub.sink
    timeout = plan.drain_timeout_s
    warm_ids, _, _ = _round(pool, sub, plan.warmup_per_gateway, plan.rate_hz, timeout)
    warm = [sink.arrivals[i] - sink.sent_at[i] for i in warm_ids if i in sink.arrivals]
    for label, count, rate in (
        ("paced", plan.messages_per_gateway, plan.rate_hz),
        ("saturated", plan.saturate_per_gateway, 0.0),
        ("drain", plan.backlog_per_gateway, 0.0),
    ):
        if count <= 0:
            continue
        dup_before = sink.duplicates
        with PeakRss() as mem:
            if label == "drain":
                ids, began, last = _drain(pool, sub, count, timeout)
            else:
                ids, began, last = _round(pool, sub, count, rate, timeout)
        _record(
            run,
            sink=sink,
            subscriber=sub.kind,
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


def _record(
    run: BenchRun,
    *,
    sink: Any,
    subscriber: str,
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
    with sink.lock:
        got = [i for i in ids if i in sink.arrivals]
        lat = [sink.arrivals[i] - sink.sent_at[i] for i in got]
        duplicates = sink.duplicates - dup_before
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
    # The bridge keeps the names earlier runs used, so `--compare` lines up with them.
    prefix = "mqtt/" if subscriber == "bridge" else f"mqtt/{subscriber}/"
    run.add(
        f"{prefix}{n}-gateways-{label}",
        record,
        params={
            "gateways": n,
            "subscriber": subscriber,
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
        curve=("gateways", f"QoS 1 via mosquitto, {subscriber}, {label}", n),
    )
