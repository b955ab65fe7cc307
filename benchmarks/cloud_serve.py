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


def naive_peer(
    registry: Path, scans: list[bytes], clients: int, per_client: int
) -> dict[str, float]:
    import uvicorn

    from benchmarks.suites.cloud import naive_app
    from cloud.grader import load_core

    core = load_core(registry, "", "fundus-grader")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(naive_app(core), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        return load(f"http://127.0.0.1:{port}/v1/grade", scans, clients, per_client)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        core.close()


def serve_figures(
    registry: Path, scans: list[bytes], clients: int, per_client: int, batch: int
) -> dict[str, Any]:
    from ray import serve

    from cloud.app import APP_NAME
    from cloud.runtime import LocalCloud
    from shared.config import CloudConfig

    with tempfile.TemporaryDirectory(prefix="edgeward-cs-", dir="/tmp") as tmp:
        config = CloudConfig(
            data_dir=Path(tmp) / "data",
            registry_dir=registry.resolve(),
            http_port=free_port(),
            grpc_port=free_port(),
        )
        with LocalCloud(config, num_cpus=2, with_bridge=False, log_to_driver=False) as cloud:
            url = f"{cloud.http_url}/v1/grade"
            grader = serve.get_deployment_handle("Grader", app_name=APP_NAME)
            out: dict[str, Any] = {"model": grader.model_version.remote().result()}
            grader.configure.remote(1, 0.0, True).result()
            out["single_client"] = load(url, scans, 1, per_client * 2)
            out["batch1"] = load(url, scans, clients, per_client)
            grader.configure.remote(batch, 0.01, True).result()
            out[f"batch{batch}"] = load(url, scans, clients, per_client)
    return out


def run(
    registry: Path, clients: int = 16, per_client: int = 6, size: int = 512, batch: int = 8
) -> dict[str, Any]:
    from cloud.grader import load_core

    logging.getLogger("httpx").setLevel(logging.WARNING)
    scans = _scans(size)
    images = [_decode(s) for s in scans]
    core = load_core(registry, "", "fundus-grader")
    try:
        cam = gradcam_cost(core, images[:batch])
        in_proc = in_process_latency(core, scans)
    finally:
        core.close()
    naive = naive_peer(registry, scans, clients, per_client)
    served = serve_figures(registry, scans, clients, per_client, batch)
    ours, unbatched = served[f"batch{batch}"], served["batch1"]
    return {
        "host": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "model": served["model"],
        "scan": f"{size}px JPEG",
        "gradcam_vs_forward": cam,
        "batching_gain": {
            "clients": clients,
            "throughput_ratio": ours["throughput_per_s"] / unbatched["throughput_per_s"],
            "batched": ours,
            "batch1": unbatched,
        },
        "serve_overhead": {
            "in_process_ms": in_proc * 1e3,
            "serve_p50_ms": served["single_client"]["p50_ms"],
            "ratio": served["single_client"]["p50_ms"] / (in_proc * 1e3),
            "added_ms": served["single_client"]["p50_ms"] - in_proc * 1e3,
        },
        "vs_naive_peer": {
            "clients": clients,
            "throughput_ratio": ours["throughput_per_s"] / naive["throughput_per_s"],
            "p99_ratio": ours["p99_ms"] / naive["p99_ms"],
            "ours": ours,
            "naive": naive,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, required=True, help="model registry directory")
    parser.add_argument("--clients", type=int, default=16, help="concurrent closed-loop clients")
    parser.add_argument("--per-client", type=int, default=6, help="timed requests per client")
    parser.add_argument("--size", type=int, default=512, help="scan side in pixels")
    parser.add_argument("--batch", type=int, default=8, help="max_batch_size when batching")
    args = parser.parse_args()
    print(
        json.dumps(
            run(args.registry, args.clients, args.per_client, args.size, args.batch), indent=2
        )
    )


if __name__ == "__main__":
    main()
