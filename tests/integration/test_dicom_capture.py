"""A JPEG/PNG scan has no DICOM study: the gateway makes one (a Secondary Capture of the scan,
the patient by pseudonym), and its SR and PDF attach to that study in a real Orthanc."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from cloud.review_desk.samples import fundus_png
from edge.clinic.app import ClinicGateway
from edge.clinic.reports.capture import PATIENT_ID_CHARS
from edge.clinic.reports.worker import PACS
from shared.broker import MosquittoBroker
from tests.integration.support.clinic_gateway import (
    API_TOKENS,
    SITE_KEY,
    cloud,
    gateway_config,
    http,
    post,
)
from tests.integration.support.dicom_camera import DicomStandInPipeline
from tests.integration.support.grading_server import GradingServer
from tests.integration.support.orthanc import AET, Orthanc
from tests.unit.dicom_report_checks import check_sr_file
from tests.waiting import wait_for

pytestmark = [pytest.mark.dicom, pytest.mark.orthanc, pytest.mark.mqtt]
__all__ = ["cloud"]  # fixture, used by name
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
PATIENT = "MRN-0042-RAW"


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    with Orthanc(tmp_path / "orthanc") as pacs:
        yield pacs


def _studies(orthanc: Orthanc) -> list[str]:
    return [str(orthanc.get(f"/studies/{s}")["MainDicomTags"]["StudyInstanceUID"])
            for s in orthanc.get("/studies")]  # fmt: skip


def test_png_scan_gets_its_own_study_with_capture_sr_and_pdf(
    tmp_path: Path, broker: MosquittoBroker, cloud: GradingServer, orthanc: Orthanc
) -> None:
    dicom = {
        "pacs": {"port": orthanc.dicom_port, "ae_title": AET, "timeout_s": 5},
        "institution": "Test Eye Clinic",
    }
    config = gateway_config(tmp_path, broker, cloud, dicom=dicom)
    service = ClinicGateway(
        config, DicomStandInPipeline(), site_key=SITE_KEY, api_tokens=API_TOKENS
    )
    service.start()
    try:
        with http(service) as client:
            resp = post(client, fundus_png(5), **{"Content-Type": "image/png",
                        "X-Patient-Id": PATIENT, "X-Laterality": "L"})  # fmt: skip
            assert resp.status_code in (200, 202), resp.text
            scan_id = resp.json()["scan_id"]
        wait_for(lambda: service.outbox.outcome(PACS, f"pdf:{scan_id}") == "delivered", 30, "PDF")
        pseudonym = service.pseudonyms.patient(PATIENT)[:PATIENT_ID_CHARS]
    finally:
        service.stop()
    (study,) = _studies(orthanc)
    files = {pydicom.dcmread(io.BytesIO(f)).SOPClassUID: f for f in orthanc.study_files(study)}
    assert set(files) == {SECONDARY_CAPTURE, COMPREHENSIVE_SR, ENCAPSULATED_PDF}
    sc = pydicom.dcmread(io.BytesIO(files[SECONDARY_CAPTURE]))
    sr = pydicom.dcmread(io.BytesIO(files[COMPREHENSIVE_SR]))
    # The patient by pseudonym only: the raw id never reaches the PACS through the gateway.
    assert sc.PatientID == sr.PatientID == pseudonym != PATIENT
    assert PATIENT.encode() not in b"".join(files.values())
    assert sc.Laterality == "L" and sc.pixel_array.shape == (256, 256, 3)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == sc.SOPInstanceUID
    (tmp_path / "sr.dcm").write_bytes(files[COMPREHENSIVE_SR])
    check_sr_file(tmp_path / "sr.dcm", laterality="L", verdict="refer")  # dciodvfy too
    pdf = pydicom.dcmread(io.BytesIO(files[ENCAPSULATED_PDF]))
    assert bytes(pdf.EncapsulatedDocument).startswith(b"%PDF")
    assert httpx.get(f"{orthanc.url}/studies", timeout=10).json()  # Orthanc answered throughout
