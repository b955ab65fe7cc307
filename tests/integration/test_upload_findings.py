"""The gateway's upload to the cloud carries what the edge found (quality findings, OOD scores),
with the patient's id and the file name redacted from the reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.clinic.app import ClinicGateway
from edge.clinic.outcome import ScanOutcome
from shared.broker import MosquittoBroker
from tests.integration.support.clinic_gateway import (
    API_TOKENS,
    SITE_KEY,
    cloud,
    gateway_config,
    http,
    post,
)
from tests.integration.support.grading_server import GradingServer
from tests.integration.support.standin_pipeline import StandInPipeline, sample_jpeg
from tests.waiting import wait_for

pytestmark = [pytest.mark.mqtt]
__all__ = ["cloud"]  # fixture, used by name
PATIENT = "MRN-7731-RAW"


class FindingsPipeline(StandInPipeline):
    """The stand-in's verdict, with the findings a real pipeline records."""

    def process(
        self,
        data: bytes,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ScanOutcome:
        base = super().process(data, filename, content_type, metadata)
        return ScanOutcome(
            base.verdict,
            [f"slightly dim image in {filename} of patient {PATIENT}"],
            ["dim", "ood_energy"],
            base.confidence,
            base.timings_ms,
            model_versions=base.model_versions,
            gradable=True,
            patient_id=base.patient_id,
            referable_probability=0.7,
            measures={"brightness": 38.5, "quality_net_p_reject": 0.2, "triage_energy": -1.5},
        )


def test_upload_carries_findings_and_scores_with_identities_redacted(
    tmp_path: Path, broker: MosquittoBroker, cloud: GradingServer
) -> None:
    config = gateway_config(tmp_path, broker, cloud)
    service = ClinicGateway(config, FindingsPipeline(), site_key=SITE_KEY, api_tokens=API_TOKENS)
    service.start()
    try:
        with http(service) as client:
            headers = {"X-Patient-Id": PATIENT, "X-Filename": "eye-left-0042.jpg"}
            assert post(client, sample_jpeg(3), **headers).status_code in (200, 202)
        wait_for(lambda: bool(cloud.received), 20, "the upload at the cloud")
    finally:
        service.stop()
    request = cloud.received[0].request
    edge = request.edge
    assert dict(edge.quality_scores) == pytest.approx({"brightness": 38.5,
                                                       "quality_net_p_reject": 0.2})  # fmt: skip
    assert dict(edge.ood_scores) == pytest.approx({"triage_energy": -1.5})
    assert list(edge.codes) == ["dim", "ood_energy"]
    assert edge.has_referable_probability and edge.referable_probability == pytest.approx(0.7)
    (reason,) = edge.reasons
    assert reason.startswith("slightly dim image in [redacted] of patient [redacted]")
    wire = request.SerializeToString()
    assert PATIENT.encode() not in wire and b"eye-left-0042" not in wire
