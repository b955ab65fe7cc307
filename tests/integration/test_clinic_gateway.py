"""The clinic gateway with real sockets: HTTP, gRPC and folder ingest, what leaves, logins."""

from __future__ import annotations

import json

import grpc
import pytest

from edge.clinic.app import ClinicGateway
from edge.clinic.pseudonym import Pseudonymiser
from edge.outbox import CLOUD, EVENTS
from shared import topics
from shared.config import ClinicGatewayConfig, MqttSettings
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from tests.integration.support.clinic_gateway import (
    API_TOKENS,
    GRPC_AUTH,
    SITE_KEY,
    cloud,
    gateway,
    http,
    is_judged,
    post,
    rows,
    scan,
)
from tests.integration.support.mqtt_collector import Collector
from tests.integration.support.standin_pipeline import StandInPipeline, fundus_jpeg, sample_jpeg
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt
__all__ = ["cloud", "gateway"]  # fixtures, used by name


def test_http_upload_returns_id_at_once_recorded_then_edge_and_cloud_verdicts(gateway, cloud):
    service = gateway()
    with http(service) as client:
        response = post(client, sample_jpeg(1), **{"X-Laterality": "OD"})
        assert response.status_code == 202
        scan_id = response.json()["scan_id"]
        assert response.json()["status"] == "accepted"
        # Durable before the answer: another connection sees the record and its bytes.
        assert rows(service, "SELECT COUNT(*) FROM scans WHERE scan_id = ?", scan_id) == [(1,)]
        assert rows(service, "SELECT length(data) FROM scan_images WHERE scan_id = ?", scan_id)[0][
            0
        ] == len(sample_jpeg(1))
        wait_for(lambda: scan(client, scan_id)["cloud"]["state"] == "graded", 15, "cloud result")
        status = scan(client, scan_id)
        assert status["verdict"] == "refer"
        assert status["cloud"]["result"]["verdict"] == "refer"
        assert status["cloud"]["result"]["model_version"] == "fundus-grader:test"
        heatmap = client.get(status["cloud"]["heatmap_url"])
        assert heatmap.headers["content-type"] == "image/png"
        assert heatmap.content.startswith(b"\x89PNG")
        assert client.get("/scans/nope").status_code == 404
        wait_for(lambda: client.get("/healthz").json()["status"] == "ok", 10, "healthy")
        assert client.get("/healthz").json()["outbox"][CLOUD] == 0


def test_grpc_submit_returns_id_at_once_and_get_scan_reports_verdicts(gateway, cloud):
    service = gateway()
    with grpc.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        stub = pb_grpc.ClinicGatewayStub(channel)
        receipt = stub.Submit(
            pb.ScanUpload(image=sample_jpeg(2), content_type="image/jpeg", filename="a.jpg"),
            timeout=10,
            metadata=GRPC_AUTH,
        )
        assert receipt.status == "accepted"
        assert rows(service, "SELECT source FROM scans WHERE scan_id = ?", receipt.scan_id) == [
            ("grpc",)
        ]

        def graded() -> bool:
            status = stub.GetScan(
                pb.ScanQuery(scan_id=receipt.scan_id), timeout=10, metadata=GRPC_AUTH
            )
            return bool(status.cloud_result_json)

        wait_for(graded, 15, "cloud result over gRPC")
        status = stub.GetScan(pb.ScanQuery(scan_id=receipt.scan_id), timeout=10, metadata=GRPC_AUTH)
        assert status.verdict == "refer"
        assert json.loads(status.cloud_result_json)["verdict"] == "refer"
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetScan(pb.ScanQuery(scan_id="unknown"), timeout=10, metadata=GRPC_AUTH)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as bad:
            stub.Submit(
                pb.ScanUpload(scan_id="bad id/../x", image=b"x"), timeout=10, metadata=GRPC_AUTH
            )
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "scan id" in (bad.value.details() or "")


def test_retried_upload_with_same_scan_id_is_recorded_and_graded_once(gateway, cloud):
    service = gateway()
    image = sample_jpeg(3)
    with http(service) as client:
        first = post(client, image, **{"X-Scan-Id": "cam1-0001"})
        again = post(client, image, **{"X-Scan-Id": "cam1-0001"})
        assert (first.status_code, again.status_code) == (202, 200)
        assert again.json() == {
            "scan_id": "cam1-0001",
            "status": "duplicate",
            "url": "/scans/cam1-0001",
        }
        other = post(client, sample_jpeg(4), **{"X-Scan-Id": "cam1-0001"})
        assert other.status_code == 409
        assert "already used for a different image" in other.json()["detail"]
        wait_for(lambda: scan(client, "cam1-0001")["cloud"]["state"] == "graded", 15, "graded")
        post(client, image, **{"X-Scan-Id": "cam1-0001"})
    assert rows(service, "SELECT COUNT(*) FROM scans") == [(1,)]
    cloud_id = Pseudonymiser(SITE_KEY).scan("cam1-0001")
    assert cloud.calls == {cloud_id: 1}


def test_bad_uploads_get_reasons_and_the_next_good_scan_is_served(gateway):
    service = gateway(real=True, limits={"max_upload_bytes": 200_000})
    with http(service) as client:
        garbage = post(client, b"this is not an image at all")
        assert garbage.status_code == 202
        empty = post(client, b"")
        truncated = post(client, fundus_jpeg(5)[:300])
        too_big = post(client, b"\xff" * 200_001)
        assert too_big.status_code == 413
        assert "max_upload_bytes" in too_big.json()["detail"]
        bad_id = post(client, sample_jpeg(6), **{"X-Scan-Id": "has spaces and /"})
        assert bad_id.status_code == 400
        assert "scan id" in bad_id.json()["detail"]
        expected = {garbage: "not_an_image", empty: "empty", truncated: "truncated"}
        for response, code in expected.items():
            scan_id = response.json()["scan_id"]
            wait_for(is_judged(client, scan_id), 10, f"verdict for {scan_id}")
            status = scan(client, scan_id)
            assert (status["verdict"], status["codes"]) == ("rejected", [code])
            assert status["reasons"][0].startswith(f"scan {scan_id}: ")
        good = post(client, fundus_jpeg(7)).json()["scan_id"]
        wait_for(is_judged(client, good), 20, "good scan verdict")
        status = scan(client, good)
        assert status["verdict"] != "rejected"
        assert {"decode", "validate", "quality"} <= set(status["timings_ms"])
        assert client.get("/healthz").status_code == 200


def test_watched_folder_takes_files_only_once_they_hold_still(gateway, tmp_path):
    inbox = tmp_path / "inbox"
    service = gateway(real=True, watch_dir=inbox, watch_poll_s=60)
    watcher = next(s for s in service.adapters if hasattr(s, "look"))
    image = fundus_jpeg(8)
    scan = inbox / "scan.jpg"
    scan.write_bytes(image[:500])
    (inbox / ".scan2.jpg").write_bytes(image)  # hidden: a camera's temp name
    (inbox / "scan3.jpg.part").write_bytes(image)
    watcher.look()
    with scan.open("ab") as f:
        f.write(image[500:])  # still being written between two looks
    watcher.look()
    assert rows(service, "SELECT COUNT(*) FROM scans") == [(0,)]
    watcher.look()  # unchanged since the last look: taken now
    assert rows(service, "SELECT filename, source FROM scans") == [("scan.jpg", "watch")]
    wait_for((inbox / "done" / "scan.jpg").exists, 10, "scan moved to done/")
    assert (inbox / "done" / "scan.jpg").read_bytes() == image
    assert (inbox / ".scan2.jpg").exists() and (inbox / "scan3.jpg.part").exists()
    (inbox / "notes.txt").write_bytes(b"lunch order")
    watcher.look()
    watcher.look()
    wait_for((inbox / "failed" / "notes.txt").exists, 10, "junk moved to failed/")
    assert "not an image" in (inbox / "failed" / "notes.txt.reason.txt").read_text()
    # The same bytes again (say, copied twice) are recognised, not recorded twice.
    (inbox / "copy.jpg").write_bytes(image)
    watcher.look()
    watcher.look()
    wait_for((inbox / "done" / "copy.jpg").exists, 10, "copy moved to done/")
    assert rows(service, "SELECT COUNT(*) FROM scans") == [(2,)]


def test_watched_folder_thread_ingests_a_dropped_scan(gateway, tmp_path):
    inbox = tmp_path / "inbox"
    gateway(real=True, watch_dir=inbox, watch_poll_s=0.05)
    tmp = inbox / "incoming.jpg.tmp"
    tmp.write_bytes(fundus_jpeg(9))
    tmp.rename(inbox / "incoming.jpg")  # write-then-rename, as most cameras do
    wait_for((inbox / "done" / "incoming.jpg").exists, 10, "dropped scan processed")


def test_no_raw_patient_or_scan_id_leaves_the_gateway(gateway, cloud, broker):
    settings = MqttSettings(host=broker.host, port=broker.port)
    collector = Collector(settings, topics.ROOT + "/#").start()
    service = gateway()
    patient, scan_id = "PAT-987654", "clinic-PAT-987654-left"
    try:
        with http(service) as client:
            response = post(
                client,
                sample_jpeg(70),
                **{"X-Scan-Id": scan_id, "X-Patient-Id": patient, "X-Filename": f"{patient}.jpg"},
            )
            assert response.status_code == 202
            wait_for(lambda: scan(client, scan_id)["cloud"]["state"] == "graded", 15, "graded")
            wait_for(lambda: len(collector.on(service.events.verdict_topic)) >= 2, 10, "events")
    finally:
        collector.stop()
    pseudonyms = Pseudonymiser(SITE_KEY)
    [received] = cloud.received
    assert received.request.scan_id == pseudonyms.scan(scan_id)
    assert received.metadata["edgeward-patient-ref"] == pseudonyms.patient(patient)
    sent = received.request.SerializeToString() + json.dumps(received.metadata).encode()
    published = b"".join(m.payload + m.topic.encode() for m in collector.messages)
    for raw in (patient.encode(), scan_id.encode()):
        assert raw not in sent
        assert raw not in published


def test_metrics_expose_stage_latency_verdicts_and_outbox_depth(gateway):
    service = gateway(real=True)
    with http(service) as client:
        good = post(client, fundus_jpeg(80)).json()["scan_id"]
        bad = post(client, b"junk").json()["scan_id"]
        wait_for(is_judged(client, good), 20, "good judged")
        wait_for(is_judged(client, bad), 10, "bad judged")
        judged = scan(client, good)
        text = client.get("/metrics").text
    for stage in ("decode", "validate", "quality", "triage"):
        assert stage in judged["timings_ms"]
        assert f'edgeward_clinic_stage_seconds_count{{stage="{stage}"}}' in text
    assert f'edgeward_clinic_verdicts_total{{verdict="{judged["verdict"]}"}} 1.0' in text
    assert (
        'edgeward_clinic_verdict_reasons_total{code="not_an_image",verdict="rejected"} 1.0' in text
    )
    assert 'edgeward_clinic_outbox_depth{outbox="cloud"}' in text


def test_gateway_logs_in_with_the_password_from_the_environment(tmp_path, auth_broker, monkeypatch):
    def start(password: str) -> ClinicGateway:
        monkeypatch.setenv("EDGEWARD_MQTT_PASSWORD", password)
        config = ClinicGatewayConfig(
            site_id="clinic-auth",
            gateway_id=f"gw-{password}",
            data_dir=tmp_path / password,
            http={"host": "127.0.0.1", "port": 0},
            mqtt={"host": auth_broker.host, "port": auth_broker.port, "username": "edge"},
        )
        return ClinicGateway(
            config, StandInPipeline(), site_key=SITE_KEY, api_tokens=API_TOKENS
        ).start()

    good, bad = start("s3cret"), start("wrong")
    try:
        wait_for(lambda: good.events.connected, 10, "connected with the right password")
        with http(bad) as client:
            response = post(client, sample_jpeg(95))
            assert response.status_code == 202  # the broker refusing us loses nothing
            wait_for(is_judged(client, response.json()["scan_id"]), 10, "judged")
            health = client.get("/healthz").json()
        assert not bad.events.connected
        assert health["broker_connected"] is False and health["outbox"][EVENTS] == 1
    finally:
        good.stop()
        bad.stop()
