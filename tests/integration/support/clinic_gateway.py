"""Fixtures and helpers of the clinic gateway tests: a real gRPC cloud, gateways on a broker."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.clinic.app import ClinicGateway
from edge.clinic.auth import ApiTokens
from edge.clinic.pipeline import ClinicPipeline
from shared.broker import MosquittoBroker
from shared.config import ClinicGatewayConfig
from tests.integration.support.grading_server import GradingServer
from tests.integration.support.standin_pipeline import StandInPipeline

SITE_KEY = b"test-site-secret-of-at-least-32-bytes"
TOKEN = "camera-test-token-0123456789abcdef"
API_TOKENS = ApiTokens({"camera-test": TOKEN})
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GRPC_AUTH = (("authorization", f"Bearer {TOKEN}"),)
REPO = Path(__file__).resolve().parents[3]
Gateway = Callable[..., ClinicGateway]


@pytest.fixture
def cloud() -> Iterator[GradingServer]:
    with GradingServer() as server:
        yield server


def gateway_config(tmp: Path, broker: MosquittoBroker, cloud: GradingServer, **extra: Any):
    return ClinicGatewayConfig(
        site_id="clinic-test",
        gateway_id="gw-test",
        data_dir=tmp / "data",
        http={"host": "127.0.0.1", "port": 0, **extra.pop("http", {})},
        grpc_port=0,
        mqtt={"host": broker.host, "port": broker.port, "keepalive_s": 5},
        cloud={
            "grpc_target": cloud.target,
            "timeout_s": 5,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.4,
            **extra.pop("cloud_settings", {}),
        },
        **extra,
    )


@pytest.fixture
def gateway(
    request: pytest.FixtureRequest, tmp_path: Path, broker: MosquittoBroker, cloud: GradingServer
) -> Iterator[Gateway]:
    """Gateways on this test's broker and cloud; `real=True` judges with C1's pipeline and the
    quick models, otherwise a stand-in that calls every readable image gradable (the quick
    quality net rejects every scan, so uplink tests need the stand-in to have work to send)."""
    started: list[ClinicGateway] = []

    def make(start: bool = True, real: bool = False, **extra: Any) -> ClinicGateway:
        if real:
            extra["registry_dir"] = request.getfixturevalue("quick_registry")
        config = gateway_config(tmp_path, broker, cloud, **extra)
        pipeline = ClinicPipeline(config) if real else StandInPipeline()
        service = ClinicGateway(config, pipeline, site_key=SITE_KEY, api_tokens=API_TOKENS)
        started.append(service)
        return service.start() if start else service

    yield make
    for service in started:
        if service.started:
            service.stop()


def http(service: ClinicGateway, token: str | None = TOKEN) -> httpx.Client:
    """A client of the gateway's HTTP API, with this test's token unless `token` is None."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=f"http://127.0.0.1:{service.http_port}", timeout=10, headers=headers
    )


def post(client: httpx.Client, data: bytes, **headers: str) -> httpx.Response:
    headers.setdefault("Content-Type", "image/jpeg")
    return client.post("/scans", content=data, headers=headers)


def scan(client: httpx.Client, scan_id: str) -> dict[str, Any]:
    response = client.get(f"/scans/{scan_id}")
    assert response.status_code == 200, response.text
    return response.json()


def is_judged(client: httpx.Client, scan_id: str) -> Callable[[], bool]:
    return lambda: scan(client, scan_id)["verdict"] != "pending"


def rows(service: ClinicGateway, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Read the gateway database from outside, as another process would."""
    with sqlite3.connect(Path(service.config.data_dir) / "gateway.db") as conn:
        return conn.execute(sql, params).fetchall()
