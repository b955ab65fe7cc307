"""Where one grade's time goes on the Serve path: CPU per request in each process, stage timings.

    .venv/bin/python -m benchmarks.cloud_profile --registry registry [--clients 1 --clients 16]

Starts the cloud tier as `bench cloud` does (2 CPUs, no bridge, loopback, no keys), then at each
concurrency runs a closed loop and reads, for every process of the Ray node (the HTTP proxy, each
replica, the controller, the raylet...), the CPU time it spent (`/proc/PID/stat` utime + stime)
divided by the requests answered. Beside it: the grader's own stage timings from the results
(queue, preprocess, infer, explain) and the client's latency. CPU per request per process says
which hop costs what on a host where the cores, not the wall clock, are the limit. Linux only.
`--py-spy DIR` also records a py-spy flame graph of each replica and the proxy at the last level.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from benchmarks.http_load import post_scans
from shared.errors import EdgewardError

TICKS = os.sysconf("SC_CLK_TCK")


def _ray_processes() -> dict[int, str]:
    """pid -> process title for every `ray::` worker and Ray daemon of this user."""
    out: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        title = cmd.strip()
        if title.startswith("ray::") or "raylet" in title or "gcs_server" in title:
            out[int(entry.name)] = title.split(" ")[0][:60]
    return out


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _load(
    url: str, scans: list[bytes], clients: int, per_client: int
) -> tuple[list[float], float, list[dict[str, float]]]:
    latencies: list[float] = []
    stages: list[dict[str, float]] = []
    lock = threading.Lock()

    def answered(status: int, body: bytes, elapsed: float) -> None:
        with lock:  # an error is collected, not raised: it would only end this client's thread
            if status != 200:
                errors.append(f"HTTP {status}: {body[:200]!r}")
                return
            latencies.append(elapsed)
            stages.append({k: float(v) for k, v in json.loads(body).get("timings_s", {}).items()})

    errors: list[str] = []
    wall, failed = post_scans(url, scans, clients, per_client, answered)
    errors += failed
    if errors:
        raise EdgewardError(f"{url}: {len(errors)} requests failed, first: {errors[0]}")
    return latencies, wall, stages


def _py_spy(pids: dict[int, str], seconds: int, out_dir: Path) -> list[subprocess.Popen[bytes]]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    procs = []
    for pid, title in pids.items():
        if not title.startswith(("ray::ServeReplica", "ray::ProxyActor")):
            continue
        name = title.replace("ray::", "").replace(":", "_")
        procs.append(
            subprocess.Popen(
                [
                    *(exe, "record", "-p", str(pid), "-d", str(seconds), "-r", "200"),
                    *("--nonblocking", "-f", "raw", "-o", str(out_dir / f"{name}-{pid}.txt")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return procs


def profile(
    registry: Path,
    *,
    clients: list[int],
    requests: int,
    size: int,
    spy_dir: Path | None,
    env: dict[str, str],
    replicas: int = 1,
) -> dict[str, Any]:
    from benchmarks.local_cloud import bench_cloud
    from benchmarks.suites.cloud import _scans

    os.environ.update(env)
    scans = _scans(size)
    report: dict[str, Any] = {
        "scan": f"{size}px JPEG",
        "env": env,
        "replicas": replicas,
        "levels": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix="edgeward-prof-", dir="/tmp") as tmp,
        bench_cloud(Path(tmp), registry, replicas) as cloud,
    ):
        url = f"{cloud.http_url}/v1/grade"
        _load(url, scans, 4, 3)  # warm-up: connections, first batches, lazy imports
        for c in clients:
            per_client = max(2, -(-requests // c))
            _load(url, scans, c, 1)
            pids = _ray_processes()
            before = {pid: _cpu_s(pid) for pid in pids}
            me = _self_cpu_s()
            spies = _py_spy(pids, 20, spy_dir) if spy_dir is not None and c == clients[-1] else []
            lat, wall, stages = _load(url, scans, c, per_client)
            n = len(lat)
            per_proc: dict[str, float] = {}
            for pid, title in pids.items():
                used = _cpu_s(pid) - before[pid]
                per_proc[title] = per_proc.get(title, 0.0) + used * 1e3 / n
            for p in spies:
                p.wait(timeout=60)
            stage_ms = {
                k: statistics.median(s.get(k, 0.0) for s in stages) * 1e3
                for k in sorted({k for s in stages for k in s})
            }
            report["levels"].append(
                {
                    "clients": c,
                    "requests": n,
                    "throughput_per_s": n / wall,
                    "p50_ms": statistics.median(lat) * 1e3,
                    "cpu_ms_per_request": {
                        k: round(v, 2)
                        for k, v in sorted(per_proc.items(), key=lambda kv: -kv[1])
                        if v >= 0.05
                    },
                    "cpu_ms_per_request_total_ray": round(sum(per_proc.values()), 2),
                    "cpu_ms_per_request_load_client": round((_self_cpu_s() - me) * 1e3 / n, 2),
                    "grader_stages_p50_ms": stage_ms,
                    "load_avg_1m": os.getloadavg()[0],
                }
            )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", type=Path, default=Path("registry"))
    parser.add_argument("--clients", type=int, action="append", help="repeatable (default 1, 16)")
    parser.add_argument("--requests", type=int, default=160, help="timed requests per level")
    parser.add_argument("--size", type=int, default=1024, help="scan side in pixels")
    parser.add_argument("--py-spy", type=Path, default=None, help="folder for py-spy profiles")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE set before Ray starts"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--replicas", type=int, default=1, help="grading replicas")
    args = parser.parse_args()
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    env = dict(e.split("=", 1) for e in args.env)
    report = profile(
        args.registry,
        clients=args.clients or [1, 16],
        requests=args.requests,
        size=args.size,
        spy_dir=args.py_spy,
        env=env,
        replicas=args.replicas,
    )
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
