"""Who may talk to the gateway's upload APIs, where they listen, and how many at once."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest

from edge.clinic.app import ClinicGateway
from edge.clinic.auth import ApiTokens
from edge.clinic.grpc_api import serve_grpc
from edge.clinic.ports import Submission
from shared.config import ClinicGatewayConfig, load_config
from shared.errors import ConfigError
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from tests.integration.support.clinic_gateway import (
    API_TOKENS,
    GRPC_AUTH,
    SITE_KEY,
    TOKEN,
    cloud,
    gateway,
    http,
    post,
)
from tests.integration.support.standin_pipeline import StandInPipeline, sample_jpeg
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt
__all__ = ["cloud", "gateway"]  # fixtures, used by name
REPO = Path(__file__).resolve().parents[2]


def test_http_without_a_valid_token_gets_401_and_nothing_is_recorded(gateway):
    service = gateway()
    for token in (None, "camera-test-token-0123456789abcdeX", TOKEN[:-1]):
        with http(service, token=token) as client:
            refused = post(client, sample_jpeg(1))
            assert refused.status_code == 401
            assert "EDGEWARD_GATEWAY_TOKEN" in refused.json()["detail"]
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert client.get("/metrics").status_code == 401
            assert client.get("/scans/anything").status_code == 401
            assert client.get("/healthz").status_code == 200  # liveness probes stay open
    assert service.store.counts().get("pending", 0) == 0
    with http(service) as client:
        accepted = post(client, sample_jpeg(1))
        assert accepted.status_code == 202
        assert client.get(f"/scans/{accepted.json()['scan_id']}").status_code == 200
        # The scheme is case-insensitive (RFC 7235), the token is not.
        lower = client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
        assert lower.status_code == 200


def test_grpc_without_a_valid_token_is_unauthenticated(gateway):
    service = gateway()
    with grpc.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        stub = pb_grpc.ClinicGatewayStub(channel)
        upload = pb.ScanUpload(image=sample_jpeg(2), content_type="image/jpeg")
        for metadata in ((), (("authorization", "Bearer wrong-token-wrong-token"),)):
            with pytest.raises(grpc.RpcError) as refused:
                stub.Submit(upload, timeout=10, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "EDGEWARD_GATEWAY_TOKEN" in (refused.value.details() or "")
            with pytest.raises(grpc.RpcError) as read:
                stub.GetScan(pb.ScanQuery(scan_id="x"), timeout=10, metadata=metadata)
            assert read.value.code() == grpc.StatusCode.UNAUTHENTICATED
        receipt = stub.Submit(upload, timeout=10, metadata=GRPC_AUTH)
        assert receipt.status == "accepted"


def test_apis_bind_loopback_by_default_and_in_the_deploy_config(gateway):
    deployed = load_config(REPO / "deploy" / "config" / "clinic-gateway.yaml", ClinicGatewayConfig)
    assert deployed.http.host == "127.0.0.1"
    assert ClinicGatewayConfig(site_id="x").http.host == "127.0.0.1"
    service = gateway()
    assert service.adapters[0].server_address[0] == "127.0.0.1"


def test_gateway_without_tokens_refuses_to_serve_and_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEWARD_GATEWAY_TOKEN", raising=False)
    config = ClinicGatewayConfig(site_id="c", data_dir=tmp_path, http={"port": 0})
    service = ClinicGateway(config, StandInPipeline(), site_key=SITE_KEY)
    with pytest.raises(ConfigError, match="EDGEWARD_GATEWAY_TOKEN is not set"):
        service.start()
    monkeypatch.setenv("EDGEWARD_GATEWAY_TOKEN", "camera-1=short")
    with pytest.raises(ConfigError, match="'camera-1' is 5 characters"):
        service.start()
    service.db.close()
    service.predictions.close()


def test_http_answers_503_when_every_connection_slot_is_taken(gateway):
    service = gateway(http={"max_connections": 2})
    held = [socket.create_connection(("127.0.0.1", service.http_port)) for _ in range(2)]
    try:
        for sock in held:  # half a request: each holds a handler thread until it times out
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        with http(service) as client:
            busy = client.get("/healthz")
        assert busy.status_code == 503
        assert "http.max_connections" in busy.json()["detail"]
    finally:
        for sock in held:
            sock.close()
    with http(service) as client:  # the slots come back when those clients go
        wait_for(lambda: client.get("/healthz").status_code == 200, 10, "a free slot")


class _BlockingIntake:
    """An intake that holds each Submit until released, to fill the gRPC server."""

    max_upload_bytes = 1 << 20

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def submit(self, data: bytes, source: str, **kwargs: Any) -> Submission:
        self.entered.set()
        self.release.wait(30)
        return Submission("held", "accepted")


class _NoReader:
    def scan_status(self, scan_id: str) -> dict[str, Any] | None:
        return None

    def heatmap(self, scan_id: str) -> bytes | None:
        return None


def test_grpc_refuses_calls_beyond_maximum_concurrent_rpcs():
    intake = _BlockingIntake()
    server, port = serve_grpc(
        intake, _NoReader(), "127.0.0.1", 0, tokens=API_TOKENS, max_concurrent_rpcs=1
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ClinicGatewayStub(channel)
            first = stub.Submit.future(pb.ScanUpload(image=b"a"), timeout=30, metadata=GRPC_AUTH)
            assert intake.entered.wait(10)
            with pytest.raises(grpc.RpcError) as full:
                stub.Submit(pb.ScanUpload(image=b"b"), timeout=10, metadata=GRPC_AUTH)
            assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            intake.release.set()
            assert first.result().scan_id == "held"
    finally:
        intake.release.set()
        server.stop()


def test_tokens_parse_per_client_and_compare_exactly():
    tokens = ApiTokens.parse("camera-1=aaaaaaaaaaaaaaaaaaaa, desk=bbbbbbbbbbbbbbbbbbbb")
    assert tokens.client_for("Bearer aaaaaaaaaaaaaaaaaaaa") == "camera-1"
    assert tokens.client_for("Bearer bbbbbbbbbbbbbbbbbbbb") == "desk"
    for header in (None, "", "Bearer ", "Basic aaaaaaaaaaaaaaaaaaaa", "Bearer aaaaaaaaaaaaaaaaaaa"):
        assert tokens.client_for(header) is None
    assert ApiTokens.parse("cccccccccccccccccccc").client_for("Bearer cccccccccccccccccccc")
    with pytest.raises(ConfigError, match="given twice"):
        ApiTokens.parse("a=cccccccccccccccccccc,a=dddddddddddddddddddd")
