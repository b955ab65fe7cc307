"""A gateway without a PACS still learns the reviewer's decision: the cloud sent the scan to its
desk, a reviewer decides through the desk's form, `GET /scans/{id}` on the gateway says so, and
the scan's last verdict event (source `reviewer`) tells the clinic's systems over MQTT."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.clinic.app import ClinicGateway
from shared import topics
from shared.broker import MosquittoBroker
from shared.config import MqttSettings
from shared.messages import ScanVerdictEvent, decode
from sim.demo.desk import Reviewer
from tests.integration.support.clinic_gateway import (
    API_TOKENS,
    SITE_KEY,
    gateway_config,
    http,
    post,
    scan,
)
from tests.integration.support.desk_cloud import DeskCloud, decide_by_form
from tests.integration.support.mqtt_collector import Collector
from tests.integration.support.standin_pipeline import StandInPipeline, sample_jpeg
from tests.waiting import wait_for

pytestmark = [pytest.mark.mqtt]
PASSWORD = "correct horse battery"


def test_the_reviewers_decision_reaches_the_gateways_scan_status(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    with DeskCloud(tmp_path / "cloud") as cloud:
        cloud.desk.desk.accounts.add("grader-3", "reviewer", PASSWORD)
        config = gateway_config(tmp_path, broker, cloud)  # type: ignore[arg-type]
        assert config.dicom.pacs is None and config.dicom.fhir is None  # no reports configured
        service = ClinicGateway(config, StandInPipeline(), site_key=SITE_KEY, api_tokens=API_TOKENS)
        service.start()
        topic = topics.clinic_verdict(config.site_id, config.gateway_id)
        collector = Collector(MqttSettings(host=broker.host, port=broker.port), topic).start()

        def reviewer_events() -> list[ScanVerdictEvent]:
            events = [decode(bytes(m.payload), ScanVerdictEvent) for m in collector.on(topic)]
            return [e for e in events if e.source == "reviewer"]

        try:
            with http(service) as client:
                response = post(client, sample_jpeg(5))
                assert response.status_code in (200, 202), response.text
                scan_id = response.json()["scan_id"]

                def review() -> dict | None:
                    return scan(client, scan_id).get("review")

                wait_for(lambda: review() == {"state": "waiting"}, 20, "the desk's case followed")
                assert scan(client, scan_id)["cloud"]["result"]["verdict"] == "review"
                decide_by_form(
                    cloud.desk.url, Reviewer("grader-3", PASSWORD), "refer", "IRMA, nasal"
                )
                wait_for(lambda: (review() or {}).get("state") == "decided", 20, "the decision")
                decided = review()
                cloud_id = scan(client, scan_id)["cloud"]["result"]["scan_id"]
            wait_for(lambda: bool(reviewer_events()), 20, "the reviewer's verdict event")
        finally:
            collector.stop()
            service.stop()
    (event,) = reviewer_events()
    assert (event.verdict, event.scan_id, event.confidence) == ("refer", cloud_id, 1.0)
    assert event.reasons[0].startswith("a reviewer at the desk decided refer")
    assert decided is not None
    assert (decided["outcome"], decided["reviewer"], decided["note"]) == (
        "refer",
        "grader-3",
        "IRMA, nasal",
    )
    assert decided["decided_at"] > 0 and decided["label"]
