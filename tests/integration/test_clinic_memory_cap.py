"""The whole clinic gateway process (`edgeward edge clinic`, models loaded) under a hard 300 MB
memory cap: issue #14's deflate bomb gets its clear refusal, and the same process then judges
a normal scan.

The cap is RLIMIT_DATA, set by util-linux `prlimit` before the gateway starts: every private
writable mapping (heap, malloc arenas, numpy and ONNX Runtime buffers, thread stacks) counts,
touched or not, so it is stricter than a resident-memory cap; an allocation past it fails inside
the process. RLIMIT_AS cannot cap the whole gateway: ONNX Runtime, OpenCV and the thread pools
reserve address space they never touch (VmSize ~1.7 GB at a VmRSS of ~160 MB here). Untouched
writable reservations would still eat a data cap, so the child runs with 1 MB thread stacks,
one OpenBLAS thread and two malloc arenas: ~145 MB of VmData once up (VmRSS ~160 MB).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.broker import MosquittoBroker
from tests.integration.support.clinic_gateway import AUTH, TOKEN
from tests.integration.support.grading_server import GradingServer
from tests.integration.support.standin_pipeline import fundus_jpeg
from tests.unit.test_scan_decode_limits import BOMB_INFLATED_MB, deflate_bomb
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt

EDGEWARD = Path(sys.executable).with_name("edgeward")
CAP_MB = 300


def _status(pid: int) -> dict[str, int]:
    """VmSize, VmRSS, VmHWM, VmData of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmSize", "VmRSS", "VmHWM", "VmData"):
            out[key] = int(value.split()[0]) // 1024
    return out


@pytest.fixture
def gateway(tmp_path: Path, broker: MosquittoBroker, quick_registry: Path) -> Iterator[int]:
    config = {
        "role": "clinic_gateway",
        "site_id": "clinic-cap",
        "gateway_id": "gw-cap",
        "data_dir": str(tmp_path / "data"),
        "registry_dir": str(quick_registry),
        "backend": "onnx-cpu",
        "http": {"host": "127.0.0.1", "port": 0},
        "grpc_port": 0,
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive_s": 5},
        # nobody listens: the uplink waits, which is not what this test is about
        "cloud": {"grpc_target": f"127.0.0.1:{GradingServer().port}", "backoff_max_s": 1},
    }
    path = tmp_path / "clinic.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "EDGEWARD_SITE_KEY": "memory-cap-test-key-of-at-least-32-bytes",
        "EDGEWARD_GATEWAY_TOKEN": f"camera-test={TOKEN}",
    }
    log = (tmp_path / "gateway.log").open("wb")
    cap = CAP_MB * 2**20
    limits = [f"--data={cap}:{cap}", f"--stack={2**20}"]
    proc = subprocess.Popen(
        ["prlimit", *limits, "--", str(EDGEWARD), "edge", "clinic", "--config", str(path)],
        env={**env, "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    info = tmp_path / "data" / "gateway.json"

    def ready() -> bool:
        assert proc.poll() is None, (tmp_path / "gateway.log").read_text()[-3000:]
        return info.exists() and json.loads(info.read_text())["pid"] == proc.pid

    try:
        wait_for(ready, 120, "gateway process under the memory cap ready")
        assert resource.prlimit(proc.pid, resource.RLIMIT_DATA) == (cap, cap)  # prlimit exec'd
        yield json.loads(info.read_text())["http_port"]
        assert proc.poll() is None, (tmp_path / "gateway.log").read_text()[-3000:]
        print("gateway memory (MB):", _status(proc.pid))
    finally:
        proc.kill()
        proc.wait(10)
        log.close()


def _judged(http: httpx.Client, scan_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(http.get(f"/scans/{scan_id}").json())
        return found.get("verdict") not in (None, "pending")

    wait_for(done, 120, f"scan {scan_id} judged by the capped gateway")
    return found


def test_gateway_under_a_300_mb_cap_refuses_the_bomb_then_judges_a_scan(gateway: int) -> None:
    bomb = deflate_bomb()
    assert len(bomb) < 0.6 * 2**20 and BOMB_INFLATED_MB > CAP_MB  # inflated, it cannot fit
    with httpx.Client(base_url=f"http://127.0.0.1:{gateway}", timeout=60, headers=AUTH) as http:
        sent = http.post(
            "/scans",
            content=bomb,
            headers={"Content-Type": "application/dicom", "X-Scan-Id": "bomb-1"},
        )
        assert sent.status_code == 202, sent.text  # recorded first, like every upload
        refused = _judged(http, "bomb-1")
        assert refused["verdict"] == "rejected" and refused["codes"] == ["inflated_too_large"]
        text = json.dumps(refused["reasons"])
        assert "max_inflated_bytes" in text and "decompression bomb" in text, refused

        sent = http.post(
            "/scans",
            content=fundus_jpeg(1),
            headers={"Content-Type": "image/jpeg", "X-Scan-Id": "normal-1"},
        )
        assert sent.status_code == 202, sent.text
        judged = _judged(http, "normal-1")  # by the same process, still under its cap
        assert judged["verdict"] != "rejected" and "inflated_too_large" not in judged["codes"]
        assert http.get("/healthz").status_code == 200
