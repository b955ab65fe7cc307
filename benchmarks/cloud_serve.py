"""Issue 5's speed figures as ratios measured in one run on this machine.

    .venv/bin/python -m benchmarks.cloud_serve --registry DIR [--clients 16] [--per-client 6]

1. Grad-CAM cost: time of an explained batch / a plain forward of the same batch (in-process).
2. Batching gain: Serve throughput at C closed-loop clients, @serve.batch on vs batch size 1.
3. Serve overhead: p50 latency of one request through HTTP + Serve / the same work in-process.
4. Naive peer: FastAPI + uvicorn calling the PyTorch grader per request at the same C clients:
   our throughput / its throughput, and both p99s.
Prints JSON. Absolute numbers depend on the host; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shared.broker import free_port


def _scans(size: int, count: int = 8) -> list[bytes]:
    from sim.fundus.generator import generate_sample

    out = []
    for i in range(count):
        img = generate_sample(seed=21, index=i, size=size, defect_rate=0.0, grade=i % 5).image_bgr
        out.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes())
    return out


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


def _median_s(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q))


def load(url: str, scans: list[bytes], clients: int, per_client: int) -> dict[str, float]:
    """Closed loop: each client sends a fresh scan id, waits, sends the next."""
    from benchmarks.suites.cloud import closed_loop

    closed_loop(url, scans, clients, 1)  # warm-up round
    lat, wall, errors = closed_loop(url, scans, clients, per_client)
    return {
        "clients": clients,
        "requests": len(lat),
        "errors": len(errors),
        "throughput_per_s": len(lat) / wall,
        "p50_ms": _pct(lat, 50),
        "p99_ms": _pct(lat, 99),
    }


def gradcam_cost(core: Any, images: list[np.ndarray], repeats: int = 5) -> dict[str, float]:
    """Explained batch vs plain forward of the same batch, median of `repeats`."""
    plain = _median_s(lambda: core.grade(images, explain=False), repeats)
    explained = _median_s(lambda: core.grade(images, explain=True), repeats)
    return {
        "batch": len(images),
        "plain_ms": plain * 1e3,
        "gradcam_ms": explained * 1e3,
        "ratio": explained / plain,
    }


def in_process_latency(core: Any, scans: list[bytes], repeats: int = 10) -> float:
    """Seconds to decode and grade one scan with Grad-CAM, no serving layer (median)."""
    state = {"i": 0}

    def one() -> None:
        state["i"] += 1
        core.grade([_decode(scans[state["i"] % len(scans)])], explain=True)

    return _median_s(one, repeats)


class NaivePeer:
    """FastAPI + uvicorn calling the PyTorch grader per request, in this process."""

    def __init__(self, registry: Path) -> None:
        import uvicorn

        from benchmarks.cloud_naive import naive_app
        from cloud.grader import load_core

        self.core = load_core(registry, "", "fundus-grader")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/v1/grade"
        self.server = uvicorn.Server(
            uvicorn.Config(naive_app(self.core), host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.core.close()


def _median_of(rounds: list[dict[str, Any]], *path: str) -> float:
    values = []
    for r in rounds:
        v: Any = r
        for key in path:
            v = v[key]
        values.append(float(v))
    return statistics.median(values)


def run(
    registry: Path,
    *,
    clients: int = 16,
    per_client: int = 4,
    size: int = 512,
    batch: int = 8,
    rounds: int = 3,
) -> dict[str, Any]:
    """Every figure is measured in each round, the paths taking turns, so a change in what else
    runs on the host hits all of them alike; ratios are computed per round, then the median."""
    from ray import serve

    from benchmarks.local_cloud import bench_cloud
    from cloud.app import APP_NAME
    from cloud.grader import load_core

    logging.getLogger("httpx").setLevel(logging.WARNING)
    scans = _scans(size)
    images = [_decode(s) for s in scans]
    core = load_core(registry, "", "fundus-grader")
    naive = NaivePeer(registry)
    per_round: list[dict[str, Any]] = []
    load_avg = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="edgeward-cs-", dir="/tmp") as tmp:
        try:
            with bench_cloud(Path(tmp), registry) as cloud:
                url = f"{cloud.http_url}/v1/grade"
                grader = serve.get_deployment_handle("Ingress", app_name=APP_NAME)
                model = grader.model_version.remote().result()
                for _ in range(rounds):
                    r: dict[str, Any] = {"gradcam": gradcam_cost(core, images[:batch], repeats=3)}
                    r["in_process_ms"] = in_process_latency(core, scans, repeats=5) * 1e3
                    grader.configure.remote(1, 0.0, True).result()
                    r["serve_single"] = load(url, scans, 1, 5)
                    r["batch1"] = load(url, scans, clients, per_client)
                    grader.configure.remote(batch, 0.01, True).result()
                    r["batched"] = load(url, scans, clients, per_client)
                    r["naive"] = load(naive.url, scans, clients, per_client)
                    per_round.append(r)
                    load_avg.append(os.getloadavg()[0])
        finally:
            naive.close()
            core.close()
    for r in per_round:
        r["ratios"] = {
            "gradcam_vs_forward": r["gradcam"]["ratio"],
            "batching_throughput": r["batched"]["throughput_per_s"]
            / r["batch1"]["throughput_per_s"],
            "serve_vs_in_process_p50": r["serve_single"]["p50_ms"] / r["in_process_ms"],
            "throughput_vs_naive": r["batched"]["throughput_per_s"]
            / r["naive"]["throughput_per_s"],
            "p99_vs_naive": r["batched"]["p99_ms"] / r["naive"]["p99_ms"],
        }
    return {
        "host": {"cpus": os.cpu_count(), "load_avg_1m": load_avg},
        "model": model,
        "scan": f"{size}px JPEG",
        "clients": clients,
        "batch": batch,
        "median_ratios": {
            key: _median_of(per_round, "ratios", key) for key in per_round[0]["ratios"]
        },
        "median_figures": {
            "serve_batched_throughput_per_s": _median_of(per_round, "batched", "throughput_per_s"),
            "serve_batched_p99_ms": _median_of(per_round, "batched", "p99_ms"),
            "serve_batch1_throughput_per_s": _median_of(per_round, "batch1", "throughput_per_s"),
            "naive_throughput_per_s": _median_of(per_round, "naive", "throughput_per_s"),
            "naive_p99_ms": _median_of(per_round, "naive", "p99_ms"),
            "in_process_ms": _median_of(per_round, "in_process_ms"),
            "serve_single_p50_ms": _median_of(per_round, "serve_single", "p50_ms"),
        },
        "rounds": per_round,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, required=True, help="model registry directory")
    parser.add_argument("--clients", type=int, default=16, help="concurrent closed-loop clients")
    parser.add_argument("--per-client", type=int, default=4, help="timed requests per client")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    parser.add_argument("--size", type=int, default=512, help="scan side in pixels")
    parser.add_argument("--batch", type=int, default=8, help="max_batch_size when batching")
    args = parser.parse_args()
    figures = run(
        args.registry,
        clients=args.clients,
        per_client=args.per_client,
        size=args.size,
        batch=args.batch,
        rounds=args.rounds,
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
