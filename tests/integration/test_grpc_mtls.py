"""Gateway -> cloud gRPC over mutual TLS: the real CloudUplink through the cloud's mTLS front.

Behind the front, a plain gRPC CloudGrader stands in for Ray Serve's gRPC proxy (it answers
with the site id it was given, which is what this test is about, not grading).
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from cloud.access import AccessLog
from cloud.grpc_tls import TlsGrpcFront
from edge.clinic.uplink import CloudUplink
from edge.database import Database
from edge.outbox import CLOUD, OUTBOX_SCHEMA, Outbox, OutboxItem
from shared.broker import free_port
from shared.config.clinic import CloudUplink as CloudSettings
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from shared.security.grpc_tls import TlsFiles
from shared.security.pki import init_ca, issue_device, issue_server
from tests.waiting import wait_for


class _EchoGrader(pb_grpc.CloudGraderServicer):
    """Answers with the site id and patient reference the cloud side received."""

    def Grade(self, request, context):
        meta = dict(context.invocation_metadata())
        return pb.GradeResult(
            scan_id=request.scan_id,
            verdict="refer",
            model_version=f"site={request.site_id};ref={meta.get('edgeward-patient-ref', '')}",
        )

    def GetResult(self, request, context):
        return pb.GradeResult(scan_id=request.scan_id, verdict="refer")


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    init_ca(d)
    issue_server(d, "cloud", dns=["localhost"], ips=["127.0.0.1"])
    issue_device(d, "clinic-a")
    other = tmp_path / "rogue-ca"
    init_ca(other)
    issue_device(other, "clinic-a")  # the right name, signed by someone else
    return d


@pytest.fixture
def front(pki: Path, tmp_path: Path) -> Iterator[tuple[str, AccessLog]]:
    upstream = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_CloudGraderServicer_to_server(_EchoGrader(), upstream)
    up_port = upstream.add_insecure_port("127.0.0.1:0")
    upstream.start()
    access = AccessLog(tmp_path / "cloud")
    tls = TlsFiles(pki / "ca.crt", pki / "cloud.crt", pki / "cloud.key")
    server = TlsGrpcFront(
        tls, f"127.0.0.1:{up_port}", port=free_port(), host="127.0.0.1", access=access
    ).start()
    yield f"127.0.0.1:{server.port}", access
    server.stop()
    upstream.stop(0)


def _uplink(tmp_path: Path, target: str, tls: TlsFiles | None, name: str):
    outbox = Outbox(Database(tmp_path / f"{name}.db", OUTBOX_SCHEMA))
    results: queue.Queue[pb.GradeResult] = queue.Queue()
    settings = CloudSettings(
        grpc_target=target, timeout_s=5, backoff_initial_s=0.2, backoff_max_s=0.5
    )

    def on_result(item: OutboxItem, result: pb.GradeResult) -> None:
        outbox.complete(item)
        results.put(result)

    uplink = CloudUplink(settings, outbox, on_result, lambda item, why: None, tls=tls)
    return uplink, outbox, results


def _send(outbox: Outbox, scan_id: str, site: str = "") -> None:
    request = pb.GradeRequest(scan_id=scan_id, image=b"img", site_id=site)
    outbox.enqueue(CLOUD, scan_id, request.SerializeToString(), {"patient_ref": "p-123"})


def test_a_gateway_with_its_certificate_is_graded_as_its_own_site(
    pki: Path, front: tuple[str, AccessLog], tmp_path: Path
) -> None:
    target, _ = front
    tls = TlsFiles(pki / "ca.crt", pki / "clinic-a.crt", pki / "clinic-a.key")
    uplink, outbox, results = _uplink(tmp_path, target, tls, "good")
    _send(outbox, "scan-1")
    uplink.start()
    try:
        result = results.get(timeout=15)
    finally:
        uplink.stop()
    assert result.scan_id == "scan-1"
    # The site comes from the certificate; the patient pseudonym passes through.
    assert result.model_version == "site=clinic-a;ref=p-123"


@pytest.mark.parametrize("client", ["no-certificate", "foreign-ca", "plaintext"])
def test_a_client_without_a_valid_certificate_is_refused(
    pki: Path, front: tuple[str, AccessLog], tmp_path: Path, client: str
) -> None:
    target, _ = front
    rogue = tmp_path / "rogue-ca"
    tls = {
        "no-certificate": None,
        "foreign-ca": TlsFiles(pki / "ca.crt", rogue / "clinic-a.crt", rogue / "clinic-a.key"),
        "plaintext": None,
    }[client]
    if client == "no-certificate":
        # TLS with the right CA, but no client certificate at all.
        creds = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.crt").read_bytes())
        with grpc.secure_channel(target, creds) as channel, pytest.raises(grpc.RpcError) as err:
            pb_grpc.CloudGraderStub(channel).Grade(
                pb.GradeRequest(scan_id="s", image=b"x"), timeout=5
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        return
    uplink, outbox, results = _uplink(tmp_path, target, tls, client)
    _send(outbox, "scan-x")
    uplink.start()
    try:
        wait_for(lambda: uplink.last_error != "", what="the uplink's refused attempt")
    finally:
        uplink.stop()
    assert results.empty()
    assert "UNAVAILABLE" in uplink.last_error
    assert outbox.peek(CLOUD)[0].attempts >= 1  # still queued, nothing lost


def test_a_gateway_cannot_act_for_another_site(
    pki: Path, front: tuple[str, AccessLog], tmp_path: Path
) -> None:
    target, access = front
    creds = TlsFiles(pki / "ca.crt", pki / "clinic-a.crt", pki / "clinic-a.key")
    with grpc.secure_channel(target, creds.channel_credentials()) as channel:
        stub = pb_grpc.CloudGraderStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Grade(pb.GradeRequest(scan_id="s2", image=b"x", site_id="clinic-b"), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "clinic-b" in (err.value.details() or "")
        # Results: only the owner's scans are visible.
        access.claim("theirs", "clinic-b")
        access.claim("mine", "clinic-a")
        with pytest.raises(grpc.RpcError) as err:
            stub.GetResult(pb.ResultQuery(scan_id="theirs"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert stub.GetResult(pb.ResultQuery(scan_id="mine"), timeout=5).scan_id == "mine"
