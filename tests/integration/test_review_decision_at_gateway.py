"""A gateway without a PACS still learns the reviewer's decision: the cloud sent the scan to its
desk, a reviewer decides through the desk's form, and `GET /scans/{id}` on the gateway says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.clinic.app import ClinicGateway
from shared.broker import MosquittoBroker
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
        finally:
            service.stop()
    assert decided is not None
    assert (decided["outcome"], decided["reviewer"], decided["note"]) == (
        "refer",
        "grader-3",
        "IRMA, nasal",
    )
    assert decided["decided_at"] > 0 and decided["label"]
