"""`bench cloud`: closed-loop load on the Serve grader, and the naive peer in the same run.

Closed loop: C client threads each send a scan, wait for the grade, send the next. Every request
has a fresh scan id (a repeated id would be answered from the result store, not graded).
Variants switch the live grader through its `configure` method: batching on (the configured
batch) or off (batch 1), Grad-CAM on or off. The naive peer is FastAPI + uvicorn calling the
same PyTorch grader per request, in this process, with the same scans and the same explanations.
In-process calls of the grader give the floor the Serve path's overhead is measured against, and
the in-process ceiling (benchmarks/cloud_ceiling.py) the throughput Serve is measured against. At
each concurrency the Serve variants, the ceiling and the naive peer run seconds apart.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.cloud_ceiling import add_ceiling, closed_loop_record
from benchmarks.cloud_naive import naive_server
from benchmarks.http_load import post_scans
from benchmarks.memory import PeakRss
from benchmarks.results import BenchRun
from benchmarks.runner import Budget, measure
from shared.broker import free_port
from shared.errors import EdgewardError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    name: str
    max_batch_size: int
    batch_wait_timeout_s: float
    explain: bool


@dataclass(frozen=True)
class CloudPlan:
    registry: Path
    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16)
    requests_per_level: int = 48  # split among the clients, at least 2 each
    scan_size: int = 1024
    variants: tuple[Variant, ...] = (
        Variant("batching+gradcam", 8, 0.01, True),
        Variant("batch1+gradcam", 1, 0.0, True),
        Variant("batching, no gradcam", 8, 0.01, False),
    )
    in_process_budget: Budget = field(default_factory=lambda: Budget(time_s=8.0))
    cam_batch: int = 8  # batch for Grad-CAM vs plain forward, in-process
    naive_peer: bool = True
    # One per CPU of the bench's 2-CPU Ray: a replica's Python (proxy hand-over, FastAPI, the
    # store) holds one core, so one replica left the second core to the proxy alone (measured
    # with benchmarks/cloud_profile.py at c=16: 25.6 -> 41.5 scans/s with 2).
    replicas: int = 2

    def per_client(self, clients: int) -> int:
        return max(2, -(-self.requests_per_level // clients))

    @classmethod
    def quick(cls, registry: Path) -> CloudPlan:
        return cls(
            registry,
            concurrency=(1, 4),
            requests_per_level=6,
            cam_batch=2,
            scan_size=512,
            replicas=1,
            in_process_budget=Budget(
                warmup_iters=2, warmup_s=0.2, min_iters=5, max_iters=50, time_s=0.8
            ),
        )


def _scans(size: int, count: int = 4) -> list[bytes]:
    from sim.fundus.generator import generate_sample

    out = []
    for i in range(count):
        img = generate_sample(seed=11, index=i, size=size, defect_rate=0.0, grade=i % 5).image_bgr
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise EdgewardError(f"bench cloud: cv2 could not encode a {size}px scan")
        out.append(buf.tobytes())
    return out


def closed_loop(
    url: str, scans: list[bytes], clients: int, per_client: int, timeout_s: float = 300.0
) -> tuple[list[float], float, list[str]]:
    """Per-request latencies (s), wall time (s) and errors for `clients` closed-loop clients."""
    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()

    def answered(status: int, body: bytes, elapsed: float) -> None:
        with lock:
            if status == 200:
                latencies.append(elapsed)
            else:
                problems.append(f"HTTP {status}: {body[:200].decode(errors='replace')}")

    wall, errors = post_scans(url, scans, clients, per_client, answered, timeout_s=timeout_s)
    return latencies, wall, problems + errors


def _load_record(
    url: str, scans: list[bytes], clients: int, per_client: int
) -> tuple[dict[str, Any], list[str]]:
    # one untimed round per client: connections, first batches and lazy imports warm up
    warm, _, _ = closed_loop(url, scans, clients, 1)
    with PeakRss() as mem:
        lat, wall, errors = closed_loop(url, scans, clients, per_client)
    if not lat:
        raise EdgewardError(f"bench cloud: every request to {url} failed: {errors[:3]}")
    return closed_loop_record(lat, wall, warm, mem), errors


def run_cloud(run: BenchRun, plan: CloudPlan) -> None:
    try:
        from ray import serve

        from cloud.app import APP_NAME
        from cloud.runtime import LocalCloud
        from shared.config import CloudConfig
        from shared.config.cloud import GraderSettings
    except ImportError as exc:
        run.skip("cloud tier", f"the Serve application cannot be imported ({exc})")
        return
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    scans = _scans(plan.scan_size)
    # In-process first: Ray's processes linger a while after shutdown and would take CPU from
    # whatever ran after them.
    _in_process(run, plan, scans)
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="edgeward-bench-cloud-"))
        # The naive peer is up (idle) during Serve's levels and is loaded at each level right
        # after Serve and the ceiling: the three throughputs are seconds apart, not minutes.
        naive_url = None
        if plan.naive_peer:
            try:
                naive_url = stack.enter_context(naive_server(plan.registry))
            except (ImportError, EdgewardError) as exc:
                run.skip("naive FastAPI peer", str(exc))
        # Ports are picked free, but a loaded host can hand one to another process before Ray
        # Serve binds it: a second start on fresh ports, then give up with the reason.
        for attempt in (1, 2):
            config = CloudConfig(
                data_dir=Path(tmp) / f"data-{attempt}",
                registry_dir=plan.registry.resolve(),
                http_port=free_port(),
                grpc_port=free_port(),
                grader=GraderSettings(min_replicas=plan.replicas, max_replicas=plan.replicas),
            )
            cloud = LocalCloud(
                config,
                num_cpus=2,
                with_bridge=False,
                namespace=f"edgeward-bench-{uuid.uuid4().hex[:8]}",
                log_to_driver=False,  # replica logs stay in the Ray session dir, not over the bar
                insecure_dev=True,  # loopback only, for the duration of the bench
            )
            try:
                cloud.start()
                break
            except Exception as exc:
                if attempt == 2:
                    run.skip("cloud tier", f"could not start Ray Serve with the grader: {exc}")
                    return
                logging.getLogger(__name__).warning(
                    "cloud tier did not start (%s); trying again on fresh ports", exc
                )
        url = f"{cloud.http_url}/v1/grade"
        from cloud.grader import load_core
        from cloud.service import grading_decode_side

        ceiling_core = load_core(plan.registry, "", "fundus-grader")
        decode_side = grading_decode_side(plan.registry, "fundus-grader")
        try:
            grader = serve.get_deployment_handle("Ingress", app_name=APP_NAME)
            run.sections["cloud"] = {
                "url": url,
                "model": grader.model_version.remote().result(),
                "scan": f"{plan.scan_size}px JPEG",
                "replicas": config.grader.min_replicas,
            }
            total = len(plan.variants) * len(plan.concurrency)
            with tqdm(total=total, desc="cloud load", unit="level") as bar:
                # Variants take turns at each level, so a slow spell on a shared host hits them
                # all alike instead of spoiling one whole curve.
                for c in plan.concurrency:
                    for v in plan.variants:
                        _configure_all(grader, plan.replicas, v)
                        bar.set_postfix_str(f"{v.name} c={c}")
                        _level(
                            run,
                            url=url,
                            scans=scans,
                            clients=c,
                            per_client=plan.per_client(c),
                            series=f"serve {v.name}",
                            variant=v,
                        )
                        bar.update()
                    # measured between Serve's levels, so a slow spell hits both alike
                    add_ceiling(
                        run,
                        ceiling_core,
                        scans,
                        clients=c,
                        per_client=plan.per_client(c),
                        variant=plan.variants[0],
                        decode_min_side=decode_side,
                    )
                    if naive_url is not None:
                        _level(
                            run,
                            url=naive_url,
                            scans=scans,
                            clients=c,
                            per_client=plan.per_client(c),
                            series="naive FastAPI+PyTorch",
                            variant=None,
                        )
        finally:
            ceiling_core.close()
            cloud.stop()
    _headline(run, plan)


def _configure_all(grader: Any, replicas: int, v: Variant) -> None:
    """Switch every replica to variant `v`: a handle call reaches one replica, picked by Serve,
    so call until each replica has answered (a bounded number of tries)."""
    seen: set[str] = set()
    for _ in range(50 * replicas):
        seen.add(
            grader.configure.remote(v.max_batch_size, v.batch_wait_timeout_s, v.explain).result()
        )
        if len(seen) >= replicas:
            return
    raise EdgewardError(
        f"bench cloud: variant {v.name!r} reached {len(seen)} of {replicas} replicas; "
        "is every replica up? (serve status)"
    )


def _level(
    run: BenchRun,
    *,
    url: str,
    scans: list[bytes],
    clients: int,
    per_client: int,
    series: str,
    variant: Variant | None,
) -> None:
    record, errors = _load_record(url, scans, clients, per_client)
    params: dict[str, Any] = {"concurrency": clients, "path": series}
    if variant is not None:
        params.update(
            max_batch_size=variant.max_batch_size,
            batch_wait_timeout_s=variant.batch_wait_timeout_s,
            gradcam=variant.explain,
        )
    run.add(
        f"cloud/{series}/c{clients}",
        record,
        params=params,
        metrics={"errors": len(errors), "error_samples": errors[:3]},
        curve=("concurrency", series, clients),
    )


def _in_process(run: BenchRun, plan: CloudPlan, scans: list[bytes]) -> None:
    """The grader called directly, one scan at a time: the floor under any serving path."""
    from cloud.grader import load_core
    from cloud.service import grading_decode_side

    core = load_core(plan.registry, "", "fundus-grader")
    run.sections["grader runtime"] = {"forward": core.runtime, "cam": core.explainer}
    images = [_decode(s) for s in scans]
    try:
        for explain in (True, False):
            record = measure(
                _one_by_one(
                    core, scans, explain, grading_decode_side(plan.registry, "fundus-grader")
                ),
                plan.in_process_budget,
                unit="scans/s",
            )
            label = "gradcam" if explain else "no gradcam"
            run.add(
                f"cloud/in-process {label}/c1",
                record,
                params={"concurrency": 1, "path": f"in-process {label}", "gradcam": explain},
            )
        batch = [images[i % len(images)] for i in range(plan.cam_batch)]
        for explain in (True, False):
            record = measure(
                _bound(core.grade, batch, explain),
                plan.in_process_budget,
                items_per_call=len(batch),
                unit="scans/s",
            )
            label = "gradcam" if explain else "forward only"
            run.add(
                f"cloud/in-process batch{len(batch)} {label}",
                record,
                params={
                    "batch": len(batch),
                    "path": f"in-process batch {label}",
                    "gradcam": explain,
                },
            )
    finally:
        core.close()


def _decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise EdgewardError("bench cloud: a generated scan did not decode")
    return np.asarray(img)


def _one_by_one(
    core: Any, scans: list[bytes], explain: bool, min_side: int | None
) -> Callable[[], object]:
    """Decode and grade the next scan: what one request costs without any serving layer."""
    from cloud.decode import decode_scan_scaled

    state = {"i": 0}

    def call() -> object:
        state["i"] += 1
        data = scans[state["i"] % len(scans)]
        # decoded as the ingress decodes (reduced to the grader's need), so Serve's overhead
        # is the difference of the same work
        return core.grade(
            [decode_scan_scaled(data, "image/jpeg", min_side=min_side).image], explain
        )

    return call


def _bound(fn: Callable[..., object], *args: object) -> Callable[[], object]:
    return lambda: fn(*args)


def _headline(run: BenchRun, plan: CloudPlan) -> None:
    by = {r["name"]: r for r in run.results}
    top = max(plan.concurrency)
    serve_b = by.get(f"cloud/serve {plan.variants[0].name}/c{top}")
    serve_1 = (
        by.get(f"cloud/serve {plan.variants[1].name}/c{top}") if len(plan.variants) > 1 else None
    )
    naive = by.get(f"cloud/naive FastAPI+PyTorch/c{top}")
    serve_c1 = by.get(f"cloud/serve {plan.variants[0].name}/c1")
    ceiling_c1 = by.get("cloud/in-process ceiling/c1")
    inproc = by.get("cloud/in-process gradcam/c1")
    if serve_c1 and ceiling_c1:
        # the same work in-process, measured seconds after Serve's level (the one-by-one
        # in-process figure runs minutes earlier: a load swing on a shared host moves it)
        run.headline["Serve overhead per request, ms (c=1 p50, vs the in-process ceiling)"] = round(
            serve_c1["latency_ms"]["p50"] - ceiling_c1["latency_ms"]["p50"], 2
        )
        run.headline["Serve vs in-process ceiling (throughput, c=1)"] = (
            f"{serve_c1['throughput']['value'] / ceiling_c1['throughput']['value']:.2f}x"
        )
    elif serve_c1 and inproc:
        run.headline["Serve overhead per request, ms (c=1, vs in-process one by one)"] = round(
            serve_c1["latency_ms"]["p50"] - inproc["latency_ms"]["p50"], 2
        )
    if serve_b and serve_1:
        run.headline[f"batching gain (throughput, c={top})"] = (
            f"{serve_b['throughput']['value'] / serve_1['throughput']['value']:.2f}x"
        )
    if serve_b and naive:
        run.headline[f"Serve vs naive peer throughput (c={top})"] = (
            f"{serve_b['throughput']['value'] / naive['throughput']['value']:.2f}x"
        )
        run.headline[f"Serve vs naive peer p99 (c={top})"] = (
            f"{serve_b['latency_ms']['p99'] / naive['latency_ms']['p99']:.2f}x"
        )
    cam = by.get(f"cloud/in-process batch{plan.cam_batch} gradcam")
    fwd = by.get(f"cloud/in-process batch{plan.cam_batch} forward only")
    ceiling = by.get(f"cloud/in-process ceiling/c{top}")
    if serve_b and ceiling:
        # the same clients, batching and threads without a server, measured between Serve's levels
        run.headline[f"Serve vs in-process ceiling (throughput, c={top})"] = (
            f"{serve_b['throughput']['value'] / ceiling['throughput']['value']:.2f}x"
        )
    if cam and fwd:
        run.headline[f"Grad-CAM cost vs plain forward (batch {plan.cam_batch}, in-process)"] = (
            f"{cam['latency_ms']['p50'] / fwd['latency_ms']['p50']:.2f}x"
        )
