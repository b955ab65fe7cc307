"""The in-process ceiling Serve is measured against: the same work, the same batching, no server.

C client threads each take the next scan's bytes, decode them with the ingress's decoder
(`cloud.decode.decode_scan`) and hand the image to one batching worker; the worker applies
the replica's rule (take the first waiting job, then up to `max_batch_size` in all, waiting at
most `batch_wait_timeout_s` for more, and not at all when no other client is between sending
and handing over its scan: `cloud.grader.Grader.grade`'s `more_coming`) and calls the same
`GraderCore.grade` the replica calls, with the replica's thread budget (`cloud.grader.load_core`).
What is left out is exactly what a serving layer adds: HTTP, the proxy, Serve's request handling
in the replica, the store write. So throughput here is the best an in-process loop with the same
batching and threads does on this host, and Serve / this is the serving layer's efficiency
(issue 17's bar: >= 0.9); at c=1, Serve's p50 minus this one's is the serving layer's overhead.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.memory import PeakRss
from benchmarks.results import BenchRun
from benchmarks.stats import summarize_ms, thin
from shared.errors import EdgewardError


def closed_loop_record(
    lat: list[float], wall: float, warm: list[float], mem: PeakRss
) -> dict[str, Any]:
    """One closed-loop level as a result record (seconds in, the bench's units out): the same
    shape for Serve, the naive peer and the in-process ceiling, so their rows compare."""
    return {
        "latency_ms": summarize_ms(lat),
        "throughput": {"value": len(lat) / wall, "unit": "scans/s"},
        "warmup": {
            "iterations": len(warm),
            "first_ms": warm[0] * 1e3 if warm else 0.0,
            "mean_ms": float(np.mean(warm)) * 1e3 if warm else 0.0,
        },
        "iterations": len(lat),
        "stop_reason": "fixed_count",
        "stable": True,
        "memory": mem.as_dict(),
        "samples_ms": thin([v * 1e3 for v in lat]),
    }


@dataclass
class _Job:
    image: np.ndarray
    done: Future[object]


class InProcessBatcher:
    """One worker thread grading batches the way `@serve.batch` forms them."""

    def __init__(self, core: Any, max_batch_size: int, wait_s: float, explain: bool) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size {max_batch_size} must be at least 1")
        self.core = core
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self.explain = explain
        self.batch_sizes: list[int] = []
        self.arriving = 0  # clients decoding a scan they have not submitted yet
        self._arriving_lock = threading.Lock()
        self._q: queue.Queue[_Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._loop, daemon=True, name="ceiling-batcher")
        self._worker.start()

    def arrive(self, delta: int) -> None:
        with self._arriving_lock:
            self.arriving += delta

    def submit(self, image: np.ndarray) -> Future[object]:
        job = _Job(image, Future())
        self.arrive(-1)
        self._q.put(job)
        return job.done

    def close(self) -> None:
        self._q.put(None)
        self._worker.join(timeout=60)

    def _take(self) -> list[_Job] | None:
        first = self._q.get()
        if first is None:
            return None
        jobs = [first]
        deadline = time.perf_counter() + (self.wait_s if self.arriving > 0 else 0.0)
        while len(jobs) < self.max_batch_size:
            left = deadline - time.perf_counter()
            try:
                job = self._q.get(timeout=left) if left > 0 else self._q.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._q.put(None)  # stop after this batch
                break
            jobs.append(job)
        return jobs

    def _loop(self) -> None:
        while (jobs := self._take()) is not None:
            self.batch_sizes.append(len(jobs))
            try:
                out = self.core.grade([j.image for j in jobs], self.explain)
            except Exception as exc:  # the clients report it; the worker keeps serving
                for j in jobs:
                    j.done.set_exception(exc)
                continue
            for j, grading in zip(jobs, out, strict=True):
                j.done.set_result(grading)


def closed_loop_in_process(
    batcher: InProcessBatcher,
    scans: list[bytes],
    clients: int,
    per_client: int,
    decode_min_side: int | None = None,
) -> tuple[list[float], float]:
    """Per-request latencies (s) and wall time (s): decode + batched grade, C clients."""
    from cloud.decode import decode_scan_scaled

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        for i in range(per_client):
            body = scans[(k + i) % len(scans)]
            t0 = time.perf_counter()
            batcher.arrive(1)
            try:
                try:
                    scan = decode_scan_scaled(
                        body, "image/jpeg", f"ceiling-{k}-{i}", min_side=decode_min_side
                    )
                except BaseException:
                    batcher.arrive(-1)
                    raise
                batcher.submit(scan.image).result()
            except Exception as exc:
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)

    wall = run_clients(client, clients)
    if failures:
        raise EdgewardError(f"bench cloud: the in-process ceiling failed: {failures[:3]}")
    return latencies, wall


def ceiling_record(
    core: Any,
    scans: list[bytes],
    *,
    clients: int,
    per_client: int,
    max_batch_size: int,
    wait_s: float,
    explain: bool,
    decode_min_side: int | None = None,
) -> dict[str, Any]:
    """One JSON-ready record in the shape `bench cloud`'s load levels have.

    `decode_min_side`: the ingress's reduced-size decode (`cloud.service.grading_decode_side`).
    """
    batcher = InProcessBatcher(core, max_batch_size, wait_s, explain)
    try:
        warm, _ = closed_loop_in_process(batcher, scans, clients, 1, decode_min_side)  # as Serve's
        batcher.batch_sizes.clear()
        with PeakRss() as mem:
            lat, wall = closed_loop_in_process(batcher, scans, clients, per_client, decode_min_side)
    finally:
        batcher.close()
    return {
        **closed_loop_record(lat, wall, warm, mem),
        "metrics": {
            "mean_batch": float(np.mean(batcher.batch_sizes)) if batcher.batch_sizes else 0.0
        },
    }


def add_ceiling(
    run: BenchRun,
    core: Any,
    scans: list[bytes],
    *,
    clients: int,
    per_client: int,
    variant: Any,
    decode_min_side: int | None,
) -> None:
    """Serve's `variant` done in-process at `clients`: same grader, batching, threads; no server."""
    record = ceiling_record(
        core,
        scans,
        decode_min_side=decode_min_side,
        clients=clients,
        per_client=per_client,
        max_batch_size=variant.max_batch_size,
        wait_s=variant.batch_wait_timeout_s,
        explain=variant.explain,
    )
    run.add(
        f"cloud/in-process ceiling/c{clients}",
        record,
        params={
            "concurrency": clients,
            "path": "in-process ceiling",
            "max_batch_size": variant.max_batch_size,
            "batch_wait_timeout_s": variant.batch_wait_timeout_s,
            "gradcam": variant.explain,
            "decode_min_side": decode_min_side,
        },
        curve=("concurrency", "in-process ceiling", clients),
    )


def run_clients(client: Callable[[int], None], clients: int) -> float:
    """Run client(0..clients-1) in threads at once (a closed loop each); the wall time taken."""
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - began
