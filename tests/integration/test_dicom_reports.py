"""Results out to a real Orthanc: the camera sends by C-STORE, the final result comes back as an
SR and an Encapsulated PDF in the same study (through the durable outbox), and as FHIR."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import highdicom as hd
import httpx
import pydicom
import pytest
from fhir.resources.R4B.bundle import Bundle

from edge.clinic.app import ClinicGateway
from edge.clinic.reports.worker import FHIR, PACS
from shared.broker import MosquittoBroker, free_port
from tests.integration.support.clinic_gateway import (
    API_TOKENS,
    SITE_KEY,
    cloud,
    gateway_config,
    rows,
)
from tests.integration.support.dicom_camera import (
    CAMERA,
    DicomStandInPipeline,
    need,
    op_file,
    storescu,
)
from tests.integration.support.grading_server import GradingServer
from tests.integration.support.orthanc import AET, Orthanc
from tests.unit.dicom_report_checks import check_sr_file
from tests.waiting import wait_for

pytestmark = [pytest.mark.dicom, pytest.mark.orthanc, pytest.mark.mqtt]
__all__ = ["cloud"]  # fixture, used by name
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


@pytest.fixture
def reporting_gateway(
    tmp_path: Path, broker: MosquittoBroker, cloud: GradingServer
) -> Iterator[Callable[..., ClinicGateway]]:
    started: list[ClinicGateway] = []

    def make(pacs: dict[str, Any], fhir: dict[str, Any] | None = None) -> ClinicGateway:
        dicom = {
            "scp": {"port": 0, "allowed_calling_ae_titles": [CAMERA]},
            "pacs": {"backoff_initial_s": 0.05, "backoff_max_s": 0.3, "timeout_s": 5, **pacs},
            "fhir": fhir or {"folder": str(tmp_path / "fhir")},
            "institution": "Test Eye Clinic",
        }
        config = gateway_config(tmp_path, broker, cloud, dicom=dicom)
        service = ClinicGateway(
            config, DicomStandInPipeline(), site_key=SITE_KEY, api_tokens=API_TOKENS
        ).start()
        started.append(service)
        return service

    yield make
    for service in started:
        if service.started:
            service.stop()


def pending(service: ClinicGateway, queue: str) -> list[tuple[str, int]]:
    return rows(service, "SELECT key, attempts FROM outbox WHERE queue = ? ORDER BY seq", queue)


def retried(service: ClinicGateway, key: str) -> bool:
    head = pending(service, PACS)[:1]
    return bool(head) and head[0][0] == key and head[0][1] >= 3


def test_pacs_outage_loses_nothing_and_sr_and_pdf_arrive_in_the_study(reporting_gateway, tmp_path):
    need("storescu")
    pacs_port = free_port()  # nothing listens here yet: the PACS is down
    service = reporting_gateway({"port": pacs_port, "ae_title": AET})
    scan = op_file(tmp_path, 11)
    sent = pydicom.dcmread(scan)
    uid, study = str(sent.SOPInstanceUID), str(sent.StudyInstanceUID)
    assert storescu(service.dicom_port, scan).returncode == 0
    wait_for(lambda: service.store.get(uid).cloud_state == "graded", 20, "cloud result")
    # The final result is reported; the PACS is down, so both instances wait and retry.
    wait_for(lambda: retried(service, f"sr:{uid}"), 20, "failed deliveries")
    assert [k for k, _n in pending(service, PACS)] == [f"sr:{uid}", f"pdf:{uid}"]

    with Orthanc(tmp_path / "orthanc", dicom_port=pacs_port) as orthanc:
        # The camera also sends the scan to the PACS, as clinics do: the study is complete.
        assert storescu(pacs_port, scan, called=AET).returncode == 0
        wait_for(lambda: not pending(service, PACS), 20, "PACS outbox drained")
        files = orthanc.study_instances(study)
    assert set(files) == {sent.SOPClassUID, COMPREHENSIVE_SR, ENCAPSULATED_PDF}
    sr = pydicom.dcmread(io.BytesIO(files[COMPREHENSIVE_SR]))
    assert sr.StudyInstanceUID == study and sr.PatientID == sent.PatientID
    report = hd.sr.ComprehensiveSR.from_dataset(sr)
    text = str(report)
    assert "Referable diabetic retinopathy" in text
    assert "fundus-grader" in text and "test" in text
    (tmp_path / "sr.dcm").write_bytes(files[COMPREHENSIVE_SR])
    check_sr_file(tmp_path / "sr.dcm", laterality=str(sent.ImageLaterality), verdict="refer")
    pdf = pydicom.dcmread(io.BytesIO(files[ENCAPSULATED_PDF]))
    assert pdf.StudyInstanceUID == study and pdf.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert bytes(pdf.EncapsulatedDocument).startswith(b"%PDF")
    # ... and the FHIR report for the EHR, in the configured folder.
    wait_for(lambda: not pending(service, FHIR), 10, "FHIR outbox drained")
    text = (tmp_path / "fhir" / f"fhir_{uid}.json").read_text()
    Bundle.model_validate_json(text)
    resources = [e["resource"] for e in json.loads(text)["entry"]]
    diagnostic = [r for r in resources if r["resourceType"] == "DiagnosticReport"]
    assert len(diagnostic) == 1 and diagnostic[0]["conclusion"].startswith("Refer")
    assert len(diagnostic[0]["result"]) == len(resources) - 1 >= 2
    # A resend of the scan is acknowledged and reported nothing twice.
    assert storescu(service.dicom_port, scan).returncode == 0
    assert rows(service, "SELECT COUNT(*) FROM dicom_reports") == [(1,)]


def test_stow_rs_to_orthanc_dicomweb_and_read_back_by_dicomweb(reporting_gateway, tmp_path):
    with Orthanc(tmp_path / "orthanc") as orthanc:
        if not orthanc.dicomweb:
            pytest.fail("orthanc-dicomweb is not installed: run `make orthanc`")
        service = reporting_gateway(
            {"protocol": "stow-rs", "stow_url": f"{orthanc.url}/dicom-web/studies"}
        )
        scan = op_file(tmp_path, 12, "jpeg-baseline")
        sent = pydicom.dcmread(scan)
        uid, study = str(sent.SOPInstanceUID), str(sent.StudyInstanceUID)
        assert storescu(service.dicom_port, scan, syntax="jpeg-baseline").returncode == 0
        wait_for(lambda: service.outbox.outcome(PACS, f"pdf:{uid}") == "delivered", 30, "STOW")
        series = httpx.get(f"{orthanc.url}/dicom-web/studies/{study}/series", timeout=10).json()
    modalities = sorted(s["00080060"]["Value"][0] for s in series)
    assert modalities == ["DOC", "SR"]
    assert json.dumps(series).count(study) >= 2


class FhirServer:
    """A real HTTP endpoint that refuses the first POST (503), then takes each one (200)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.answers: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = 503 if not outer.answers else 200
                outer.answers.append(code)
                outer.bodies.append(body)
                self.send_response(code)
                self.send_header("Content-Type", "application/fhir+json")
                self.end_headers()
                self.wfile.write(b'{"resourceType": "Bundle", "type": "transaction-response"}')

            def log_message(self, *args: object) -> None:
                """Quiet: the test asserts on what arrived."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_reports_queued_before_a_restart_are_sent_after_it(reporting_gateway, tmp_path):
    pacs_port = free_port()  # the PACS is down for the whole first life of the gateway
    fhir = FhirServer()
    try:
        first = reporting_gateway({"port": pacs_port, "ae_title": AET}, {"endpoint": fhir.url})
        scan = op_file(tmp_path, 13)
        sent = pydicom.dcmread(scan)
        uid = str(sent.SOPInstanceUID)
        assert storescu(first.dicom_port, scan).returncode == 0
        wait_for(lambda: retried(first, f"sr:{uid}"), 20, "failed deliveries")
        first.stop()
        with Orthanc(tmp_path / "orthanc", dicom_port=pacs_port) as orthanc:
            second = reporting_gateway({"port": pacs_port, "ae_title": AET}, {"endpoint": fhir.url})
            wait_for(lambda: not pending(second, PACS), 20, "PACS outbox drained")
            files = orthanc.study_instances(str(sent.StudyInstanceUID))
        assert set(files) == {COMPREHENSIVE_SR, ENCAPSULATED_PDF}
        wait_for(lambda: not pending(second, FHIR), 20, "FHIR outbox drained")
    finally:
        fhir.close()
    # The endpoint refused once and took the retry: the same report, validated as a Bundle.
    assert fhir.answers == [503, 200]
    assert fhir.bodies[0] == fhir.bodies[1]
    Bundle.model_validate_json(fhir.bodies[1])
    assert rows(second, "SELECT COUNT(*) FROM dicom_reports") == [(1,)]


def test_an_edge_final_result_is_reported_with_the_edge_verdict(reporting_gateway, tmp_path):
    """A scan the edge cannot judge never reaches the cloud: its edge verdict is the final one."""
    with Orthanc(tmp_path / "orthanc") as orthanc:
        service = reporting_gateway({"port": orthanc.dicom_port, "ae_title": AET})
        path = op_file(tmp_path, 14)
        ds = pydicom.dcmread(path)
        ds.PixelData = bytes(ds.PixelData)[: len(ds.PixelData) // 2]  # half the pixels lost
        ds.save_as(path)
        uid = str(ds.SOPInstanceUID)
        assert storescu(service.dicom_port, path).returncode == 0
        wait_for(lambda: service.outbox.outcome(PACS, f"pdf:{uid}") == "delivered", 30, "sent")
        record = service.store.get(uid)
        files = orthanc.study_instances(str(ds.StudyInstanceUID))
    assert record is not None and record.cloud_state is None  # never went to the cloud
    sr = hd.sr.ComprehensiveSR.from_dataset(pydicom.dcmread(io.BytesIO(files[COMPREHENSIVE_SR])))
    finding = [i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "121071"]
    assert finding[0].ConceptCodeSequence[0].CodeValue == record.verdict != "refer"
