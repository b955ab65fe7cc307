"""The clinic gateway's delivery: outboxes through broker and cloud outages, restarts, logs,
model updates — on a real mosquitto and a real gRPC cloud."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edge.clinic.judging import RULES_MODEL
from edge.clinic.pseudonym import Pseudonymiser
from edge.clinic.upload import upload_copy
from edge.outbox import CLOUD, EVENTS
from shared import topics
from shared.config import MqttSettings
from shared.messages import GatewayStatus, ModelUpdate, ModelUpdateAck, ScanVerdictEvent, decode
from shared.monitoring.prediction_log import PredictionLog, pseudonymise
from tests.integration.support.clinic_gateway import (
    REPO,
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
from tests.integration.support.standin_pipeline import fundus_jpeg, sample_jpeg
from tests.waiting import wait_for

pytestmark = pytest.mark.mqtt
__all__ = ["cloud", "gateway"]  # fixtures, used by name


def test_broker_outage_events_wait_on_disk_and_arrive_once_in_order(gateway, broker):
    settings = MqttSettings(host=broker.host, port=broker.port)
    service = gateway(real=True)
    verdict_topic = topics.clinic_verdict("clinic-test", "gw-test")
    collector = Collector(settings, verdict_topic).start()
    try:
        with http(service) as client:
            wait_for(lambda: service.events.connected, 10, "gateway connected")
            broker.stop()
            wait_for(lambda: not service.events.connected, 10, "gateway saw the outage")
            scans = [fundus_jpeg(20), b"junk", fundus_jpeg(21), fundus_jpeg(22)]
            ids = [post(client, scan).json()["scan_id"] for scan in scans]
            for scan_id in ids:
                wait_for(is_judged(client, scan_id), 20, "judged during the outage")
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
            assert [e.verdict for e in events] == [scan(client, i)["verdict"] for i in ids]
            assert events[1].verdict == "rejected"
    finally:
        collector.stop()


def test_status_is_retained_online_with_outbox_depth(gateway, broker, cloud):
    settings = MqttSettings(host=broker.host, port=broker.port)
    cloud.stop()
    service = gateway()
    status_topic = topics.gateway_status("clinic", "gw-test")
    with http(service) as client:
        post(client, sample_jpeg(30))
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
    with http(service) as client:
        ids = [post(client, sample_jpeg(40 + i)).json()["scan_id"] for i in range(4)]
        wait_for(lambda: service.outbox.depth(CLOUD) == 4, 10, "all four waiting")
        wait_for(
            lambda: (
                rows(service, "SELECT MIN(attempts) FROM outbox WHERE queue = 'cloud'")[0][0]
                is not None
                and rows(service, "SELECT MAX(attempts) FROM outbox WHERE queue = 'cloud'")[0][0]
                >= 2
            ),
            10,
            "retries with backoff",
        )
        assert scan(client, ids[0])["cloud"]["state"] == "queued"
        cloud.start()
        wait_for(lambda: service.outbox.depth(CLOUD) == 0, 30, "cloud outbox drained")
        pseudonyms = Pseudonymiser(SITE_KEY)
        assert cloud.scan_ids() == [pseudonyms.scan(i) for i in ids]
        assert set(cloud.calls.values()) == {1}
        for scan_id in ids:
            assert scan(client, scan_id)["cloud"]["state"] == "graded"


def test_scan_the_cloud_refuses_is_marked_and_does_not_block_the_queue(gateway, cloud):
    cloud.refuse.add(Pseudonymiser(SITE_KEY).scan("refused-1"))
    service = gateway()
    with http(service) as client:
        post(client, sample_jpeg(90), **{"X-Scan-Id": "refused-1"})
        post(client, sample_jpeg(91), **{"X-Scan-Id": "after-2"})
        wait_for(lambda: scan(client, "after-2")["cloud"]["state"] == "graded", 15, "next graded")
        refused = scan(client, "refused-1")["cloud"]
    assert refused["state"] == "rejected"
    assert "INVALID_ARGUMENT" in refused["detail"]
    assert cloud.calls[Pseudonymiser(SITE_KEY).scan("refused-1")] == 1  # not retried


def test_gateway_restart_resumes_unjudged_scans_and_outbox_work(gateway, cloud, broker):
    cloud.stop()
    broker.stop()  # events pile up on disk too
    first = gateway()
    with http(first) as client:
        queued = [post(client, sample_jpeg(50 + i)).json()["scan_id"] for i in range(2)]
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
        with http(second) as client:
            wait_for(is_judged(client, recorded), 10, "unjudged scan judged after restart")
            wait_for(lambda: second.outbox.depth(CLOUD) == 0, 30, "outbox drained after restart")
            for scan_id in [*queued, recorded]:
                assert scan(client, scan_id)["cloud"]["state"] == "graded"
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


def test_every_edge_verdict_is_logged_pseudonymised_and_the_monitor_reports_on_it(
    gateway, quick_registry, tmp_path
):
    service = gateway(real=True)
    with http(service) as client:
        scans = [post(client, fundus_jpeg(20 + i)).json()["scan_id"] for i in range(6)]
        garbage = post(client, b"not an image").json()["scan_id"]
        for scan_id in [*scans, garbage]:
            wait_for(is_judged(client, scan_id), 20, f"verdict for {scan_id}")
        statuses = {s: scan(client, s) for s in [*scans, garbage]}
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
    # The quality net alone (review, no defect named) stops a scan at the gate as a retake does.
    past_gate = [
        s
        for s in scans
        if statuses[s]["verdict"] != "retake" and "quality_net" not in statuses[s]["codes"]
    ]
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


def test_the_verdict_never_waits_for_the_cloud_copy_and_a_restart_makes_it(gateway, cloud):
    first = gateway()
    image = sample_jpeg(90)

    def power_cut(data: bytes, filename: str | None, content_type: str | None) -> tuple[bytes, str]:
        raise RuntimeError("power cut while making the copy")

    first.judging.uploads.make_copy = power_cut
    with http(first) as client:
        scan_id = post(client, image).json()["scan_id"]
        wait_for(is_judged(client, scan_id), 10, "edge verdict")
        status = scan(client, scan_id)
    # The verdict is recorded (and its event queued) although the copy was never made.
    assert status["verdict"] == "refer" and status["cloud"]["state"] == "preparing"
    assert rows(first, "SELECT COUNT(*) FROM outbox WHERE queue = 'cloud'") == [(0,)]
    first.stop()
    assert cloud.received == []
    second = gateway()  # same data_dir: the copy is made at start
    with http(second) as client:
        wait_for(lambda: scan(client, scan_id)["cloud"]["state"] == "graded", 15, "graded")
    [received] = cloud.received
    assert received.request.image == upload_copy(image, None, "image/jpeg")[0]
    assert received.request.edge.verdict == "refer"
