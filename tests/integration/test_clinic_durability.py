"""The gateway under faults: a scan the cloud keeps failing, a full disk, a damaged or foreign
database. Real gRPC cloud, real broker, real SQLite files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import yaml

from edge.clinic.database import MIGRATIONS, SCHEMA, Database
from edge.clinic.delivery import error_class
from edge.clinic.pseudonym import Pseudonymiser
from edge.outbox import CLOUD
from shared.errors import EdgewardError
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from tests.integration.support.clinic_gateway import (
    GRPC_AUTH,
    SITE_KEY,
    gateway,
    http,
    post,
    rows,
    scan,
)
from tests.integration.support.grading_server import GradingServer, _Grader
from tests.integration.support.standin_pipeline import sample_jpeg
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt
__all__ = ["gateway"]  # fixture, used by name
EDGEWARD = Path(sys.executable).with_name("edgeward")


class _FailingGrader(_Grader):
    def Grade(self, request: pb.GradeRequest, context: grpc.ServicerContext) -> pb.GradeResult:
        owner = self.owner
        assert isinstance(owner, FailingCloud)
        if request.scan_id in owner.fail:
            with owner.lock:
                owner.calls[request.scan_id] += 1
            context.abort(grpc.StatusCode.INTERNAL, "grader crashed on this image")
        return super().Grade(request, context)


class FailingCloud(GradingServer):
    """The test cloud, but scans in `fail` get INTERNAL every time (a bug in the cloud)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: set[str] = set()

    def start(self) -> FailingCloud:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_CloudGraderServicer_to_server(_FailingGrader(self), server)
        assert server.add_insecure_port(self.target) != 0
        server.start()
        self._server = server
        return self


@pytest.fixture
def cloud() -> Iterator[FailingCloud]:
    server = FailingCloud().start()
    yield server
    server.stop()


def _cli(service, *args: str) -> subprocess.CompletedProcess[str]:
    config = Path(service.config.data_dir).parent / "gateway.yaml"
    config.write_text(yaml.safe_dump(service.config.model_dump(mode="json")))
    return subprocess.run(
        [str(EDGEWARD), "edge", "clinic", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_scan_the_cloud_keeps_failing_becomes_a_dead_letter_and_the_queue_moves_on(
    gateway, cloud
):
    cloud.fail.add(Pseudonymiser(SITE_KEY).scan("poison-1"))
    service = gateway(cloud_settings={"max_attempts_refused": 3})
    with http(service) as client:
        post(client, sample_jpeg(70), **{"X-Scan-Id": "poison-1"})
        post(client, sample_jpeg(71), **{"X-Scan-Id": "after-1"})
        wait_for(lambda: scan(client, "after-1")["cloud"]["state"] == "graded", 20, "next graded")
        poisoned = scan(client, "poison-1")["cloud"]
        assert poisoned["state"] == "dead_letter"
        assert "3 refused failures" in poisoned["detail"] and "INTERNAL" in poisoned["detail"]
        assert cloud.calls[Pseudonymiser(SITE_KEY).scan("poison-1")] == 3  # bounded
        status = client.get("/status").json()
        assert [d["scan_id"] for d in status["dead_letters"]] == ["poison-1"]
        assert status["dead_letters"][0]["error_class"] == "refused"
        assert "edgeward_clinic_dead_letters 1.0" in client.get("/metrics").text
        assert service.outbox.depth(CLOUD) == 0

        listed = _cli(service, "dead-letters")
        assert listed.returncode == 0, listed.stderr
        assert "poison-1" in listed.stdout and "refused" in listed.stdout
        cloud.fail.clear()  # the cloud is fixed: the operator sends it again
        retried = _cli(service, "retry", "poison-1")
        assert retried.returncode == 0, retried.stderr
        assert "queued again: poison-1" in retried.stdout
        wait_for(lambda: scan(client, "poison-1")["cloud"]["state"] == "graded", 20, "retried")
        assert client.get("/status").json()["dead_letters"] == []
        assert _cli(service, "retry", "poison-1").returncode == 1  # nothing left to retry


def test_refused_for_good_is_a_dead_letter_too_and_retry_all_sends_it(gateway, cloud):
    cloud.refuse.add(Pseudonymiser(SITE_KEY).scan("bad-1"))
    service = gateway()
    with http(service) as client:
        post(client, sample_jpeg(72), **{"X-Scan-Id": "bad-1"})
        wait_for(lambda: scan(client, "bad-1")["cloud"]["state"] == "rejected", 20, "rejected")
        assert [d["error_class"] for d in client.get("/status").json()["dead_letters"]] == [
            "permanent"
        ]
        cloud.refuse.clear()
        assert service.dead_letters.retry() == ["bad-1"]
        service.uplink.notify()
        wait_for(lambda: scan(client, "bad-1")["cloud"]["state"] == "graded", 20, "retried")


def test_an_unreachable_cloud_has_its_own_larger_bound(gateway, cloud):
    cloud.stop()
    service = gateway(cloud_settings={"max_attempts_transient": 2, "max_attempts_refused": 1})
    with http(service) as client:
        scan_id = post(client, sample_jpeg(73)).json()["scan_id"]
        wait_for(lambda: scan(client, scan_id)["cloud"]["state"] == "dead_letter", 20, "buried")
        # Two UNAVAILABLE calls, not one: a refusal's bound of 1 did not apply to an outage.
        [letter] = client.get("/status").json()["dead_letters"]
    assert (letter["error_class"], letter["attempts"]) == ("transient", 2)
    assert "UNAVAILABLE" in letter["last_error"]


def test_error_classes():
    assert error_class("UNAVAILABLE: connection refused") == "transient"
    assert error_class("INTERNAL: boom") == "refused"
    assert error_class("DEADLINE_EXCEEDED: slow") == "refused"


def test_below_the_free_space_watermark_new_scans_get_507_and_accepted_ones_carry_on(
    gateway, cloud
):
    cloud.stop()
    service = gateway()
    with http(service) as client:
        accepted = post(client, sample_jpeg(80)).json()["scan_id"]
        wait_for(lambda: service.outbox.depth(CLOUD) == 1, 10, "waiting for the cloud")
        service.intake.min_free_bytes = 1 << 62  # the disk is "full" from here on
        refused = post(client, sample_jpeg(81))
        assert refused.status_code == 507
        assert "limits.min_free_bytes" in refused.json()["detail"]
        assert rows(service, "SELECT COUNT(*) FROM scans") == [(1,)]
        with grpc.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
            stub = pb_grpc.ClinicGatewayStub(channel)
            with pytest.raises(grpc.RpcError) as full:
                stub.Submit(pb.ScanUpload(image=sample_jpeg(82)), timeout=10, metadata=GRPC_AUTH)
            assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        cloud.start()
        wait_for(lambda: scan(client, accepted)["cloud"]["state"] == "graded", 30, "still sent")


def test_a_damaged_database_is_refused_at_start_naming_the_file(tmp_path):
    path = tmp_path / "gateway.db"
    db = Database(path)
    with db.transaction() as conn:
        for i in range(400):
            conn.execute(
                "INSERT INTO outbox (queue, key, payload, meta, created_at) VALUES (?,?,?,?,0)",
                ("cloud", f"k{i}", b"x" * 500, "{}"),
            )
    db.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray(path.read_bytes())
    page = 4096
    raw[page * 5 : page * 5 + 200] = b"\xff" * 200  # a b-tree page in the middle, not the header
    path.write_bytes(bytes(raw))
    with pytest.raises(EdgewardError) as damaged:
        Database(path)
    message = str(damaged.value)
    assert str(path) in message and "damaged" in message and "backup" in message


def test_an_old_database_is_migrated_in_place_and_a_newer_one_is_refused(tmp_path):
    path = tmp_path / "gateway.db"
    with sqlite3.connect(path) as conn:  # as the gateway wrote it before schema versions
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT INTO outbox (queue, key, payload, meta, created_at) "
            "VALUES ('cloud', 'old-1', x'00', '{}', 0)"
        )
    db = Database(path)
    assert db.version == len(MIGRATIONS) + 1 >= 3
    assert [tuple(r) for r in db.read("SELECT version FROM schema_version")] == [(db.version,)]
    assert [tuple(r) for r in db.read("SELECT key, failures FROM outbox")] == [("old-1", "{}")]
    assert db.read("SELECT COUNT(*) AS n FROM dead_letters")[0]["n"] == 0
    db.close()
    Database(path).close()  # opening again changes nothing
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 9")
    with pytest.raises(EdgewardError, match=r"schema version 9, newer than this edgeward knows"):
        Database(path)
