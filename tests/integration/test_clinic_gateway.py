"""The clinic gateway service with real sockets: HTTP, gRPC, a real mosquitto, a real gRPC cloud."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from edge.clinic.app import ClinicGateway
from edge.clinic.judging import RULES_MODEL
from edge.clinic.pipeline import ClinicPipeline
from edge.clinic.pseudonym import Pseudonymiser
from edge.outbox import CLOUD, EVENTS
from shared import topics
from shared.broker import MosquittoBroker
from shared.config import ClinicGatewayConfig, MqttSettings
from shared.messages import GatewayStatus, ModelUpdate, ModelUpdateAck, ScanVerdictEvent, decode
from shared.monitoring.prediction_log import PredictionLog, pseudonymise
from shared.proto import edgeward_pb2 as pb
from shared.proto import edgeward_pb2_grpc as pb_grpc
from tests.integration.support.grading_server import GradingServer
from tests.integration.support.mqtt_collector import Collector
from tests.integration.support.standin_pipeline import StandInPipeline, fundus_jpeg, sample_jpeg
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt

SITE_KEY = b"test-site-secret"
REPO = Path(__file__).resolve().parents[2]
Gateway = Callable[..., ClinicGateway]


@pytest.fixture
def cloud() -> Iterator[GradingServer]:
    with GradingServer() as server:
        yield server


def _config(tmp: Path, broker: MosquittoBroker, cloud: GradingServer, **extra: Any):
    return ClinicGatewayConfig(
        site_id="clinic-test",
        gateway_id="gw-test",
        data_dir=tmp / "data",
        http={"host": "127.0.0.1", "port": 0},
        grpc_port=0,
        mqtt={"host": broker.host, "port": broker.port, "keepalive_s": 5},
        cloud={
            "grpc_target": cloud.target,
            "timeout_s": 5,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.4,
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
        config = _config(tmp_path, broker, cloud, **extra)
        pipeline = ClinicPipeline(config) if real else StandInPipeline()
        service = ClinicGateway(config, pipeline, site_key=SITE_KEY)
        started.append(service)
        return service.start() if start else service

    yield make
    for service in started:
        if service.started:
            service.stop()


def _http(service: ClinicGateway) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{service.http_port}", timeout=10)


def _post(client: httpx.Client, data: bytes, **headers: str) -> httpx.Response:
    headers.setdefault("Content-Type", "image/jpeg")
    return client.post("/scans", content=data, headers=headers)


def _scan(client: httpx.Client, scan_id: str) -> dict[str, Any]:
    response = client.get(f"/scans/{scan_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _judged(client: httpx.Client, scan_id: str) -> Callable[[], bool]:
    return lambda: _scan(client, scan_id)["verdict"] != "pending"


def _rows(service: ClinicGateway, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Read the gateway database from outside, as another process would."""
    with sqlite3.connect(Path(service.config.data_dir) / "gateway.db") as conn:
        return conn.execute(sql, params).fetchall()


def test_http_upload_returns_id_at_once_recorded_then_edge_and_cloud_verdicts(gateway, cloud):
    service = gateway()
    with _http(service) as client:
        response = _post(client, sample_jpeg(1), **{"X-Laterality": "OD"})
        assert response.status_code == 202
        scan_id = response.json()["scan_id"]
        assert response.json()["status"] == "accepted"
        # Durable before the answer: another connection sees the record and its bytes.
        assert _rows(service, "SELECT COUNT(*) FROM scans WHERE scan_id = ?", scan_id) == [(1,)]
        assert _rows(service, "SELECT length(data) FROM scan_images WHERE scan_id = ?", scan_id)[0][
            0
        ] == len(sample_jpeg(1))
        wait_for(lambda: _scan(client, scan_id)["cloud"]["state"] == "graded", 15, "cloud result")
        status = _scan(client, scan_id)
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
        )
        assert receipt.status == "accepted"
        assert _rows(service, "SELECT source FROM scans WHERE scan_id = ?", receipt.scan_id) == [
            ("grpc",)
        ]

        def graded() -> bool:
            status = stub.GetScan(pb.ScanQuery(scan_id=receipt.scan_id), timeout=10)
            return bool(status.cloud_result_json)

        wait_for(graded, 15, "cloud result over gRPC")
        status = stub.GetScan(pb.ScanQuery(scan_id=receipt.scan_id), timeout=10)
        assert status.verdict == "refer"
        assert json.loads(status.cloud_result_json)["verdict"] == "refer"
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetScan(pb.ScanQuery(scan_id="unknown"), timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as bad:
            stub.Submit(pb.ScanUpload(scan_id="bad id/../x", image=b"x"), timeout=10)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "scan id" in (bad.value.details() or "")


def test_retried_upload_with_same_scan_id_is_recorded_and_graded_once(gateway, cloud):
    service = gateway()
    image = sample_jpeg(3)
    with _http(service) as client:
        first = _post(client, image, **{"X-Scan-Id": "cam1-0001"})
        again = _post(client, image, **{"X-Scan-Id": "cam1-0001"})
        assert (first.status_code, again.status_code) == (202, 200)
        assert again.json() == {
            "scan_id": "cam1-0001",
            "status": "duplicate",
            "url": "/scans/cam1-0001",
        }
        other = _post(client, sample_jpeg(4), **{"X-Scan-Id": "cam1-0001"})
        assert other.status_code == 409
        assert "already used for a different image" in other.json()["detail"]
        wait_for(lambda: _scan(client, "cam1-0001")["cloud"]["state"] == "graded", 15, "graded")
        _post(client, image, **{"X-Scan-Id": "cam1-0001"})
    assert _rows(service, "SELECT COUNT(*) FROM scans") == [(1,)]
    cloud_id = Pseudonymiser(SITE_KEY).scan("cam1-0001")
    assert cloud.calls == {cloud_id: 1}


def test_bad_uploads_get_reasons_and_the_next_good_scan_is_served(gateway):
    service = gateway(real=True, limits={"max_upload_bytes": 200_000})
    with _http(service) as client:
        garbage = _post(client, b"this is not an image at all")
        assert garbage.status_code == 202
        empty = _post(client, b"")
        truncated = _post(client, fundus_jpeg(5)[:300])
        too_big = _post(client, b"\xff" * 200_001)
        assert too_big.status_code == 413
        assert "max_upload_bytes" in too_big.json()["detail"]
        bad_id = _post(client, sample_jpeg(6), **{"X-Scan-Id": "has spaces and /"})
        assert bad_id.status_code == 400
        assert "scan id" in bad_id.json()["detail"]
        expected = {garbage: "not_an_image", empty: "empty", truncated: "truncated"}
        for response, code in expected.items():
            scan_id = response.json()["scan_id"]
            wait_for(_judged(client, scan_id), 10, f"verdict for {scan_id}")
            status = _scan(client, scan_id)
            assert (status["verdict"], status["codes"]) == ("rejected", [code])
            assert status["reasons"][0].startswith(f"scan {scan_id}: ")
        good = _post(client, fundus_jpeg(7)).json()["scan_id"]
        wait_for(_judged(client, good), 20, "good scan verdict")
        status = _scan(client, good)
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
    assert _rows(service, "SELECT COUNT(*) FROM scans") == [(0,)]
    watcher.look()  # unchanged since the last look: taken now
    assert _rows(service, "SELECT filename, source FROM scans") == [("scan.jpg", "watch")]
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
    assert _rows(service, "SELECT COUNT(*) FROM scans") == [(2,)]


def test_watched_folder_thread_ingests_a_dropped_scan(gateway, tmp_path):
    inbox = tmp_path / "inbox"
    gateway(real=True, watch_dir=inbox, watch_poll_s=0.05)
    tmp = inbox / "incoming.jpg.tmp"
    tmp.write_bytes(fundus_jpeg(9))
    tmp.rename(inbox / "incoming.jpg")  # write-then-rename, as most cameras do
    wait_for((inbox / "done" / "incoming.jpg").exists, 10, "dropped scan processed")


def test_broker_outage_events_wait_on_disk_and_arrive_once_in_order(gateway, broker):
    settings = MqttSettings(host=broker.host, port=broker.port)
    service = gateway(real=True)
    verdict_topic = topics.clinic_verdict("clinic-test", "gw-test")
    collector = Collector(settings, verdict_topic).start()
    try:
        with _http(service) as client:
            wait_for(lambda: service.events.connected, 10, "gateway connected")
            broker.stop()
            wait_for(lambda: not service.events.connected, 10, "gateway saw the outage")
            scans = [fundus_jpeg(20), b"junk", fundus_jpeg(21), fundus_jpeg(22)]
            ids = [_post(client, scan).json()["scan_id"] for scan in scans]
            for scan_id in ids:
                wait_for(_judged(client, scan_id), 20, "judged during the outage")
            assert service.outbox.depth(EVENTS) >= 4
            broker.start()
            wait_for(lambda: service.outbox.depth(EVENTS) == 0, 30, "event outbox drained")
            edge = lambda: [  # noqa: E731
                decode(bytes(m.payload), ScanVerdictEvent)
                for m in collector.on(verdict_topic)
                if decode(bytes(m.payload), ScanVerdictEvent).source == "edge"
            ]
            wait_for(lambda: len(edge()) >= 4, 20, "collector got the edge verdicts")
            events = edge()
            pseudonyms = Pseudonymiser(SITE_KEY)
            assert [e.scan_id for e in events] == [pseudonyms.scan(i) for i in ids]
            assert len({e.message_id for e in events}) == len(events)
            assert [e.verdict for e in events] == [_scan(client, i)["verdict"] for i in ids]
            assert events[1].verdict == "rejected"
    finally:
        collector.stop()


def test_status_is_retained_online_with_outbox_depth(gateway, broker, cloud):
    settings = MqttSettings(host=broker.host, port=broker.port)
    cloud.stop()
    service = gateway()
    status_topic = topics.gateway_status("clinic", "gw-test")
    with _http(service) as client:
        _post(client, sample_jpeg(30))
        wait_for(lambda: service.outbox.depth(CLOUD) == 1, 10, "scan waiting for the cloud")
        wait_for(lambda: not service.uplink.healthy, 10, "uplink noticed the outage")
    collector = Collector(settings, status_topic).start()  # joins late: sees the retained one
    try:

        def latest() -> GatewayStatus | None:
            msgs = collector.on(status_topic)
            return decode(bytes(msgs[-1].payload), GatewayStatus) if msgs else None

        wait_for(lambda: (s := latest()) is not None and s.state == "degraded", 15, "degraded")
        status = latest()
        assert status is not None and status.outbox_depth == 1 and "cloud" in status.detail
        cloud.start()
        wait_for(lambda: (s := latest()) is not None and s.state == "online", 15, "online again")
        assert latest().outbox_depth == 0  # type: ignore[union-attr]
        service.stop()
        wait_for(lambda: latest().state == "offline", 10, "offline on stop")  # type: ignore[union-attr]
    finally:
        collector.stop()


def test_cloud_outage_outbox_waits_then_drains_in_order_without_duplicates(gateway, cloud):
    cloud.stop()
    service = gateway()
    with _http(service) as client:
        ids = [_post(client, sample_jpeg(40 + i)).json()["scan_id"] for i in range(4)]
        wait_for(lambda: service.outbox.depth(CLOUD) == 4, 10, "all four waiting")
        wait_for(
            lambda: (
                _rows(service, "SELECT MIN(attempts) FROM outbox WHERE queue = 'cloud'")[0][0]
                is not None
                and _rows(service, "SELECT MAX(attempts) FROM outbox WHERE queue = 'cloud'")[0][0]
                >= 2
            ),
            10,
            "retries with backoff",
        )
        assert _scan(client, ids[0])["cloud"]["state"] == "queued"
        cloud.start()
        wait_for(lambda: service.outbox.depth(CLOUD) == 0, 30, "cloud outbox drained")
        pseudonyms = Pseudonymiser(SITE_KEY)
        assert cloud.scan_ids() == [pseudonyms.scan(i) for i in ids]
        assert set(cloud.calls.values()) == {1}
        for scan_id in ids:
            assert _scan(client, scan_id)["cloud"]["state"] == "graded"


def test_scan_the_cloud_refuses_is_marked_and_does_not_block_the_queue(gateway, cloud):
    cloud.refuse.add(Pseudonymiser(SITE_KEY).scan("refused-1"))
    service = gateway()
    with _http(service) as client:
        _post(client, sample_jpeg(90), **{"X-Scan-Id": "refused-1"})
        _post(client, sample_jpeg(91), **{"X-Scan-Id": "after-2"})
        wait_for(lambda: _scan(client, "after-2")["cloud"]["state"] == "graded", 15, "next graded")
        refused = _scan(client, "refused-1")["cloud"]
    assert refused["state"] == "rejected"
    assert "INVALID_ARGUMENT" in refused["detail"]
    assert cloud.calls[Pseudonymiser(SITE_KEY).scan("refused-1")] == 1  # not retried


def test_gateway_restart_resumes_unjudged_scans_and_outbox_work(gateway, cloud, broker):
    cloud.stop()
    broker.stop()  # events pile up on disk too
    first = gateway()
    with _http(first) as client:
        queued = [_post(client, sample_jpeg(50 + i)).json()["scan_id"] for i in range(2)]
        wait_for(lambda: first.outbox.depth(CLOUD) == 2, 10, "two scans waiting for the cloud")
    first.stop()
    # Recorded but never judged: a gateway that stopped right after answering 202.
    unstarted = gateway(start=False)
    recorded = unstarted.intake.submit(
        sample_jpeg(60), source="http", content_type="image/jpeg"
    ).scan_id
    unstarted.db.close()
    cloud.start()
    broker.start()
    verdict_topic = topics.clinic_verdict("clinic-test", "gw-test")
    collector = Collector(MqttSettings(host=broker.host, port=broker.port), verdict_topic).start()
    try:
        second = gateway()
        with _http(second) as client:
            wait_for(_judged(client, recorded), 10, "unjudged scan judged after restart")
            wait_for(lambda: second.outbox.depth(CLOUD) == 0, 30, "outbox drained after restart")
            for scan_id in [*queued, recorded]:
                assert _scan(client, scan_id)["cloud"]["state"] == "graded"
        wait_for(lambda: second.outbox.depth(EVENTS) == 0, 30, "events drained after restart")
        wait_for(lambda: len(collector.on(verdict_topic)) >= 6, 10, "edge + cloud events")
        events = [decode(bytes(m.payload), ScanVerdictEvent) for m in collector.on(verdict_topic)]
    finally:
        collector.stop()
    pseudonyms = Pseudonymiser(SITE_KEY)
    expected = [pseudonyms.scan(i) for i in [*queued, recorded]]
    assert cloud.scan_ids() == expected
    assert set(cloud.calls.values()) == {1}
    # Each verdict published once: the two edge events written before the restart come first.
    assert [e.scan_id for e in events if e.source == "edge"] == expected
    assert sorted(e.scan_id for e in events if e.source == "cloud") == sorted(expected)
    assert len({e.message_id for e in events}) == len(events) == 6


def test_no_raw_patient_or_scan_id_leaves_the_gateway(gateway, cloud, broker):
    settings = MqttSettings(host=broker.host, port=broker.port)
    collector = Collector(settings, topics.ROOT + "/#").start()
    service = gateway()
    patient, scan_id = "PAT-987654", "clinic-PAT-987654-left"
    try:
        with _http(service) as client:
            response = _post(
                client,
                sample_jpeg(70),
                **{"X-Scan-Id": scan_id, "X-Patient-Id": patient, "X-Filename": f"{patient}.jpg"},
            )
            assert response.status_code == 202
            wait_for(lambda: _scan(client, scan_id)["cloud"]["state"] == "graded", 15, "graded")
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
    with _http(service) as client:
        good = _post(client, fundus_jpeg(80)).json()["scan_id"]
        bad = _post(client, b"junk").json()["scan_id"]
        wait_for(_judged(client, good), 20, "good judged")
        wait_for(_judged(client, bad), 10, "bad judged")
        judged = _scan(client, good)
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
        return ClinicGateway(config, StandInPipeline(), site_key=SITE_KEY).start()

    good, bad = start("s3cret"), start("wrong")
    try:
        wait_for(lambda: good.events.connected, 10, "connected with the right password")
        with _http(bad) as client:
            response = _post(client, sample_jpeg(95))
            assert response.status_code == 202  # the broker refusing us loses nothing
            wait_for(_judged(client, response.json()["scan_id"]), 10, "judged")
            health = client.get("/healthz").json()
        assert not bad.events.connected
        assert health["broker_connected"] is False and health["outbox"][EVENTS] == 1
    finally:
        good.stop()
        bad.stop()


def test_every_edge_verdict_is_logged_pseudonymised_and_the_monitor_reports_on_it(
    gateway, quick_registry, tmp_path
):
    service = gateway(real=True)
    with _http(service) as client:
        scans = [_post(client, fundus_jpeg(20 + i)).json()["scan_id"] for i in range(6)]
        garbage = _post(client, b"not an image").json()["scan_id"]
        for scan_id in [*scans, garbage]:
            wait_for(_judged(client, scan_id), 20, f"verdict for {scan_id}")
        statuses = {s: _scan(client, s) for s in [*scans, garbage]}
    service.stop()
    log_path = Path(service.config.data_dir) / "predictions.sqlite"
    plog = PredictionLog(log_path, SITE_KEY)
    try:
        quality = plog.rows("fundus-quality")
        triage = plog.rows("fundus-triage")
        rules = plog.rows(RULES_MODEL)
    finally:
        plog.close()
    # One quality row per readable scan, triage rows only past the gate, a rules row for garbage.
    assert len(quality) == len(scans)
    past_gate = [s for s in scans if statuses[s]["verdict"] != "retake"]
    assert len(triage) == len(past_gate)
    assert [(r.verdict, r.model_version) for r in rules] == [("rejected", "rules")]
    cloud_ids = {s: Pseudonymiser(SITE_KEY).scan(s) for s in statuses}
    logged = {r.pid for r in quality + rules}
    assert logged == {pseudonymise(cloud_ids[s], SITE_KEY) for s in statuses}
    assert not logged & (set(statuses) | set(cloud_ids.values()))  # no raw id stored
    by_pid = {r.pid: r for r in quality}
    for scan_id in scans:
        row = by_pid[pseudonymise(cloud_ids[scan_id], SITE_KEY)]
        status = statuses[scan_id]
        assert row.verdict == status["verdict"]
        assert row.model_version == status["model_versions"]["quality"]
        assert row.tier == "edge" and row.attributes["site"] == "clinic-test"
        assert 0.0 <= row.confidence <= 1.0 and row.score is not None
        assert {"brightness", "red_green_ratio", "sketch_0", "quality.quality_net_p_reject"} <= set(
            row.features
        )
        assert row.features["quality.quality_net_p_reject"] == pytest.approx(row.score, abs=1e-4)
    # The "runnable on the edge from its own log" promise: the monitor reads the gateway's log.
    cmd = [str(REPO / ".venv/bin/edgeward"), "monitor", "report", "--log", str(log_path),
           "--registry", str(quick_registry), "--model", "fundus-quality", "--window", "6",
           "--out", str(tmp_path / "report")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "fundus-quality: " in done.stdout and "over the last 6" in done.stdout
    assert (tmp_path / "report" / "index.html").exists()


def test_model_updates_are_off_unless_configured(gateway):
    assert gateway().updater is None


def test_gateway_configured_for_model_updates_listens_and_answers_them(gateway, broker, tmp_path):
    gw_id = "gw-test"
    settings = MqttSettings(host=broker.host, port=broker.port)
    collector = Collector(settings, topics.model_update_ack("clinic", gw_id)).start()
    service = gateway(model_updates=True, registry_dir=tmp_path / "registry")
    try:
        assert service.updater is not None
        wait_for(service.updater.subscribed.is_set, 10, "updater subscribed")
        update = ModelUpdate(
            sender="cloud",
            name="fundus-triage",
            version="9",
            manifest_json="{}",
            sha256="0" * 64,
            payload_b64="AAAA",
            reason="canary",
        )
        collector.client.publish(topics.model_update("clinic", gw_id), update.encode(), qos=1)
        ack_topic = topics.model_update_ack("clinic", gw_id)
        wait_for(lambda: collector.on(ack_topic), 10, "the gateway's answer to the update")
    finally:
        collector.stop()
    ack = decode(bytes(collector.on(ack_topic)[0].payload), ModelUpdateAck)
    assert (ack.update_id, ack.status) == (update.message_id, "refused")
    assert "manifest is malformed" in ack.reason
