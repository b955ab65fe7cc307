"""One local Ray Serve cloud for a test module: a quick registry whose newest champion has
tampered weights, a per-site model, a real mosquitto, HTTP and gRPC clients."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import grpc
import httpx
import pytest
import torch

from cloud.runtime import LocalCloud
from cloud.store import SqliteStore
from shared.broker import MosquittoBroker, free_port
from shared.config import CloudConfig, MqttSettings
from shared.config.cloud import GraderSettings
from shared.proto import edgeward_pb2_grpc as pb_grpc
from shared.registry import Registry
from sim.fundus.generator import FundusSample

GRADER = "fundus-grader"
SITE_KEY = b"cloud-serve-test-key"  # the grader logs every grade, keyed with it
DEADLINE_S = 120.0


@dataclass
class Cloud:
    local: LocalCloud
    http: httpx.Client
    grpc: pb_grpc.CloudGraderStub
    store: SqliteStore
    registry: Registry
    broker: MosquittoBroker
    champion: str  # the version that must serve (the newest champion is corrupt)
    corrupt: str  # the newest champion, with tampered weights
    site_model: str  # a per-site model id


def _registry_with_corrupt_champion_and_site_model(
    source: Path, root: Path
) -> tuple[str, str, str]:
    """The good champion becomes a former one; a new champion has tampered weights; one more
    version stands for a site's fine-tuned model. Returns the three model ids."""
    shutil.copytree(source, root)
    reg = Registry(root)
    good = reg.champion(GRADER)
    assert good is not None
    made = []
    for _ in range(2):
        version = reg.next_version(GRADER)
        shutil.copytree(reg.version_dir(GRADER, good.version), root / GRADER / version)
        reg.save(good.model_copy(update={"version": version, "stage": "candidate", "history": []}))
        made.append(version)
    corrupt, site = made
    reg.set_stage(GRADER, corrupt, "champion", "test: to be corrupted")
    weights = root / GRADER / corrupt / good.artifacts["pytorch"].path
    state = torch.load(weights, weights_only=True)
    next(iter(state.values())).mul_(-1.0)
    torch.save(state, weights)
    return f"{GRADER}:{good.version}", f"{GRADER}:{corrupt}", f"{GRADER}:{site}"


@pytest.fixture(scope="module")
def cloud(quick_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    tmp = tmp_path_factory.mktemp("cloud")
    ids = _registry_with_corrupt_champion_and_site_model(quick_registry, tmp / "reg")
    champion, corrupt, site = ids
    env = pytest.MonkeyPatch()  # Ray's workers inherit it from this process
    env.setenv("EDGEWARD_SITE_KEY", SITE_KEY.decode())
    with MosquittoBroker(workdir=tmp / "mqtt") as broker:
        config = CloudConfig(
            data_dir=tmp / "data",
            registry_dir=tmp / "reg",
            http_port=free_port(),
            grpc_port=free_port(),
            grader=GraderSettings(max_batch_size=4, batch_wait_timeout_s=0.02),
            mqtt=MqttSettings(host=broker.host, port=broker.port),
        )
        with LocalCloud(
            config,
            num_cpus=2,
            namespace=f"edgeward-test-{uuid.uuid4().hex[:8]}",
            insecure_dev=True,  # these tests are about grading; keys: test_cloud_ingress_access
        ) as lc:
            channel = grpc.insecure_channel(lc.grpc_target)
            with httpx.Client(base_url=lc.http_url, timeout=60) as http:
                yield Cloud(
                    lc,
                    http,
                    pb_grpc.CloudGraderStub(channel),
                    SqliteStore(tmp / "data"),
                    Registry(tmp / "reg"),
                    broker,
                    champion,
                    corrupt,
                    site,
                )
            channel.close()
    env.undo()


def png_bytes(sample: FundusSample) -> bytes:
    return cv2.imencode(".png", sample.image_bgr)[1].tobytes()


def new_scan_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def post_scan(
    cloud: Cloud, scan_id: str, body: bytes | Iterator[bytes], **headers: str
) -> httpx.Response:
    h = {"content-type": "image/png", "x-scan-id": scan_id}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    return cloud.http.post("/v1/grade", content=body, headers=h)


def until(what: str, check: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {deadline_s}s")


def listener(port: int) -> str:
    """The name of the process listening on loopback TCP `port` ('' while none is)."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    names = re.findall(r'users:\(\("([^"]+)"', out)
    return names[0] if names else ""
