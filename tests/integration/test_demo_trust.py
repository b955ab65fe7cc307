"""The demo's trust wiring, part by part with real processes: the gateways' mTLS front started
as `edgeward grpc-tls`, a clinic gateway config that dials it, the retry with fresh ports when
a port is taken between picking and binding, and the report's probes (which must also fail
when a defence is off)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from shared.broker import MosquittoBroker, free_port
from shared.config.clinic import CloudUplink
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from sim.demo import trust
from sim.demo.supervisor import PortTakenError, Process, Supervisor, start_with_fresh_ports

pytestmark = pytest.mark.mqtt


class _SiteEcho(pb_grpc.CloudGraderServicer):
    """Stands in for Ray Serve's gRPC proxy behind the front: answers with the site it got."""

    def Grade(self, request, context):
        return pb.GradeResult(scan_id=request.scan_id, model_version=f"site={request.site_id}")


@pytest.fixture
def upstream() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_CloudGraderServicer_to_server(_SiteEcho(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    import os

    with Supervisor(tmp_path / "logs", dict(os.environ)) as s:
        yield s


def test_gateways_reach_the_cloud_only_over_mtls_as_their_own_site(
    upstream: int, sup: Supervisor, tmp_path: Path
) -> None:
    uplink = trust.Uplink(clinics=2)
    uplink.start_front(sup, upstream, tmp_path / "cloud")
    # The block the demo writes into clinic-1's config validates and names its certificate.
    settings = CloudUplink.model_validate(uplink.clinic_settings("clinic-1"))
    assert settings.tls is not None and settings.tls.cert_file.name == "clinic-1.crt"
    files = uplink.tls("clinic-1")
    with grpc.secure_channel(settings.grpc_target, files.channel_credentials()) as channel:
        answer = pb_grpc.CloudGraderStub(channel).Grade(pb.GradeRequest(scan_id="s1"), timeout=10)
    assert answer.model_version == "site=clinic-1"  # the certificate's CN, not the request
    checks = uplink.probe()
    assert [c.ok for c in checks] == [True, True], [c.detail for c in checks]
    # The same front restarted towards a new upstream keeps its port (gateways never move).
    port = uplink.port
    uplink.start_front(sup, free_port(), tmp_path / "cloud")
    assert uplink.port == port and sup.children[trust.FRONT].alive


def test_a_plain_grpc_cloud_fails_the_uplink_probe(upstream: int) -> None:
    uplink = trust.Uplink(clinics=1)
    uplink.port = upstream  # what the demo dialled before: Ray Serve's gRPC, no TLS
    (no_cert,) = uplink.probe()
    assert not no_cert.ok


def test_a_taken_port_is_retried_with_fresh_ones(
    upstream: int, sup: Supervisor, tmp_path: Path
) -> None:
    uplink = trust.Uplink(clinics=1)
    with socket.socket() as squatter:  # took the port between picking and binding
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports: list[int] = []

        def launch(attempt: int) -> Process:
            uplink.port = taken if attempt == 1 else free_port()
            ports.append(uplink.port)
            return uplink.start_front(sup, upstream, tmp_path / "cloud")

        with pytest.raises(PortTakenError, match="Failed to bind"):
            launch(1)  # alone, the first attempt fails on the squatter's port
        proc = start_with_fresh_ports(launch, lambda p: None, "gRPC mTLS front")
    assert ports[0] == ports[1] == taken and ports[2] != taken
    assert proc.alive


def test_the_acl_probe_passes_on_deploy_mosquitto_and_fails_on_an_open_broker(
    production_broker: MosquittoBroker, tmp_path: Path
) -> None:
    check = trust.probe_broker_acl(production_broker, ["J1", "J2"])
    assert check is not None and check.ok, check
    with MosquittoBroker(workdir=tmp_path / "open") as open_broker:
        check = trust.probe_broker_acl(open_broker, ["J1", "J2"])
    assert check is not None and not check.ok and "INCLUDED" in check.detail
