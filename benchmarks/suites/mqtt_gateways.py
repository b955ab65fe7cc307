"""Simulated gateways for `bench mqtt`, in worker processes.

The subscriber under test (plain client or bridge) gets the bench process and its GIL to itself;
a hundred publishing clients in that same process would measure the bench, not the subscriber.
Each worker drives its share of the gateways from one thread: paced rounds through each gateway's
paho client, offset within the period as real gateways are; unpaced rounds through a second, bare
connection per gateway (`mqtt_burst.py`), so the load generator is not the bottleneck it measures.
It sends back the message ids it published.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as paho

from benchmarks.suites.mqtt_burst import BurstPublisher, burst
from benchmarks.suites.worker_pipe import answer
from shared import topics
from shared.config.base import MqttSettings
from shared.errors import EdgewardError
from shared.messages import ApproachCount, TrafficAggregate
from shared.mqtt import QOS, make_client

START_DELAY_S = 0.2  # every worker starts a round at the same wall-clock time
BUILD_S_PER_MESSAGE = 100e-6  # an unpaced round's mark leaves this per message to build it
READY_TIMEOUT_S = 60.0
PUBACK_TIMEOUT_S = 60.0


def connected(client: paho.Client, settings: MqttSettings, timeout: float = 10.0) -> None:
    ready = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: ready.set() if not rc.is_failure else None
    client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    client.loop_start()
    if not ready.wait(timeout):
        raise EdgewardError(
            f"mqtt bench: client {client._client_id!r} got no CONNACK from "
            f"{settings.host}:{settings.port} within {timeout}s; is the broker up?"
        )


def aggregate(gateway: str, seq: int, now: float | None = None) -> TrafficAggregate:
    """The `seq`-th aggregate of `gateway`, sent at `now` (default: this instant)."""
    now = time.time() if now is None else now
    return TrafficAggregate(
        sent_at=now,
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


Built = list[list[tuple[str, bytes]]]  # per sequence number, per gateway: (message_id, payload)


def _build(gateways: list[str], count: int, at: float) -> Built:
    """An unpaced round's messages, built before its start mark (all sent_at the mark), so the
    publishers spend the round publishing, not encoding."""
    return [
        [(msg.message_id, msg.encode()) for msg in (aggregate(g, seq, at) for g in gateways)]
        for seq in range(count)
    ]


def _publish(
    clients: dict[str, paho.Client], count: int, rate_hz: float, start: float
) -> list[str]:
    """A paced round through each gateway's paho client, each gateway offset within the period."""
    period = 1.0 / rate_hz
    step = period / max(len(clients), 1)
    sent: list[str] = []
    infos: list[paho.MQTTMessageInfo] = []
    for seq in range(count):
        for i, (gateway, client) in enumerate(clients.items()):
            delay = start + seq * period + i * step - time.time()
            if delay > 0:
                time.sleep(delay)
            msg = aggregate(gateway, seq)
            info = client.publish(topics.traffic_aggregate(gateway), msg.encode(), qos=QOS)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise EdgewardError(f"mqtt bench: {gateway} publish failed with rc={info.rc}")
            infos.append(info)
            sent.append(msg.message_id)
    for info in infos:  # the round ends when the broker has every message (PUBACK)
        info.wait_for_publish(timeout=PUBACK_TIMEOUT_S)
    return sent


def _burst(bursts: dict[str, BurstPublisher], ready: Built, start: float) -> list[str]:
    """An unpaced round: every gateway's pre-built messages, as fast as the broker takes them."""
    plan = [
        (pub, topics.traffic_aggregate(gateway), [msgs[i][1] for msgs in ready])
        for i, (gateway, pub) in enumerate(bursts.items())
    ]
    time.sleep(max(0.0, start - time.time()))
    burst(plan)
    return [message_id for msgs in ready for message_id, _ in msgs]


def _worker(settings_json: str, names: list[str], conn: Connection) -> None:
    settings = MqttSettings.model_validate_json(settings_json)
    clients: dict[str, paho.Client] = {}
    bursts: dict[str, BurstPublisher] = {}
    try:
        for name in names:
            client = make_client(settings, name)
            client.max_queued_messages_set(0)  # unbounded: QoS 1 must never drop
            connected(client, settings)
            clients[name] = client
            bursts[name] = BurstPublisher(settings, f"{name}-burst")
        conn.send(("ready", []))
        ready: Built = []
        while True:
            cmd = conn.recv()
            if cmd[0] == "stop":
                break
            if cmd[0] == "build":
                _, count, at = cmd
                ready = _build(list(clients), count, at)
                conn.send(("built", []))
                continue
            _, count, rate_hz, start = cmd
            if rate_hz:
                conn.send(("ids", _publish(clients, count, rate_hz, start)))
            else:
                conn.send(("ids", _burst(bursts, ready, start)))
            ready = []
    except Exception as exc:  # reported to the bench process, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for client in clients.values():
            client.disconnect()
        for client in clients.values():
            client.loop_stop()
        for pub in bursts.values():
            pub.close()


class GatewayPool:
    """`n` gateways spread over `processes` worker processes, connected once, many rounds."""

    def __init__(self, settings: MqttSettings, names: list[str], processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        k = max(1, min(processes, len(names)))
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self.size = len(names)
        for chunk in (names[i::k] for i in range(k)):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker, args=(settings.model_dump_json(), chunk, child), daemon=True
            )
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)
        for conn in self._conns:
            self._reply(conn, READY_TIMEOUT_S)

    def _reply(self, conn: Connection, timeout: float) -> list[str]:
        ids: list[str] = answer(conn, "a gateway worker", timeout)
        return ids

    def round(self, count: int, rate_hz: float, timeout_s: float) -> tuple[list[str], float]:
        """Every gateway publishes `count` messages at `rate_hz` (0: unpaced, all offered at the
        start); (ids, the round's start)."""
        start = time.time() + START_DELAY_S
        if not rate_hz:  # the messages are built first, sent_at = the mark, a mark set after that
            start += count * -(-self.size // len(self._conns)) * BUILD_S_PER_MESSAGE
            for conn in self._conns:
                conn.send(("build", count, start))
            for conn in self._conns:
                self._reply(conn, timeout_s)
            # had building overrun the mark, start now: latencies then read long, never short
            start = max(start, time.time() + 0.01)
        for conn in self._conns:
            conn.send(("round", count, rate_hz, start))
        ids: list[str] = []
        for conn in self._conns:
            ids.extend(self._reply(conn, timeout_s))
        return ids, start

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):  # a worker that already died
                conn.send(("stop",))
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
