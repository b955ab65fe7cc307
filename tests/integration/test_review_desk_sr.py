"""A reviewer's decision is the final result: decided at the desk (login, CSRF form), fetched
by the site's gateway, and sent as an amended SR and a new PDF into the study in a real
Orthanc, through the durable outbox (the PACS is down when the decision comes)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from edge.clinic.app import ClinicGateway
from edge.clinic.reports.worker import PACS
from shared.broker import MosquittoBroker, free_port
from sim.demo.desk import Reviewer
from tests.integration.support.clinic_gateway import API_TOKENS, SITE_KEY, gateway_config, rows
from tests.integration.support.desk_cloud import MODEL, DeskCloud, decide_by_form
from tests.integration.support.dicom_camera import (
    CAMERA,
    DicomStandInPipeline,
    need,
    op_file,
    storescu,
)
from tests.integration.support.orthanc import AET, Orthanc
from tests.unit.dicom_report_checks import check_sr_file
from tests.waiting import wait_for

pytestmark = [pytest.mark.dicom, pytest.mark.orthanc, pytest.mark.mqtt]
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
PASSWORD = "correct horse battery"
REVIEWER = Reviewer("grader-7", PASSWORD)


@pytest.fixture
def desk_cloud(tmp_path: Path) -> Iterator[DeskCloud]:
    with DeskCloud(tmp_path / "cloud") as cloud:
        cloud.desk.desk.accounts.add("grader-7", "reviewer", PASSWORD)
        yield cloud


def _cloud_state(service: ClinicGateway, scan_id: str) -> str | None:
    record = service.store.get(scan_id)
    return None if record is None else record.cloud_state


def _pending(service: ClinicGateway) -> list[tuple[str, int]]:
    return rows(service, "SELECT key, attempts FROM outbox WHERE queue = ? ORDER BY seq", PACS)


def test_desk_decision_reaches_the_study_as_amended_sr_and_pdf(
    tmp_path: Path, broker: MosquittoBroker, desk_cloud: DeskCloud
) -> None:
    need("storescu")
    pacs_port = free_port()  # nothing listens here yet: the PACS is down
    dicom = {
        "scp": {"port": 0, "allowed_calling_ae_titles": [CAMERA]},
        "pacs": {"port": pacs_port, "ae_title": AET, "backoff_initial_s": 0.05,
                 "backoff_max_s": 0.3, "timeout_s": 5},
        "fhir": {"folder": str(tmp_path / "fhir")},
        "institution": "Test Eye Clinic",
    }  # fmt: skip
    config = gateway_config(tmp_path, broker, desk_cloud, dicom=dicom)  # type: ignore[arg-type]
    service = ClinicGateway(
        config, DicomStandInPipeline(), site_key=SITE_KEY, api_tokens=API_TOKENS
    )
    service.start()
    try:
        scan = op_file(tmp_path, 21)
        sent = pydicom.dcmread(scan)
        uid, study = str(sent.SOPInstanceUID), str(sent.StudyInstanceUID)
        assert service.dicom_port is not None
        assert storescu(service.dicom_port, scan).returncode == 0
        wait_for(lambda: _cloud_state(service, uid) == "graded", 20, "cloud result")
        # The cloud said "review": the automated SR goes out, and the gateway waits for a person.
        wait_for(lambda: rows(service, "SELECT state FROM review_decisions") == [("waiting",)],
                 20, "the gateway following the review case")  # fmt: skip
        case_id = decide_by_form(desk_cloud.desk.url, REVIEWER, "refer", "new vessels")
        wait_for(lambda: f"sr-review:{uid}" in dict(_pending(service)), 20, "review SR queued")
        # The PACS is still down: the reviewer's reports wait in the outbox with the rest.
        assert [k for k, _n in _pending(service)] == [
            f"sr:{uid}", f"pdf:{uid}", f"sr-review:{uid}", f"pdf-review:{uid}"
        ]  # fmt: skip
        with Orthanc(tmp_path / "orthanc", dicom_port=pacs_port) as orthanc:
            assert storescu(pacs_port, scan, called=AET).returncode == 0
            wait_for(lambda: not _pending(service), 30, "PACS outbox drained")
            raw = orthanc.study_files(study)
        fhir = tmp_path / "fhir" / f"fhir-review_{uid}.json"
        wait_for(fhir.exists, 20, "the amended FHIR report")
    finally:
        service.stop()
    files = {pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID: f for f in raw}
    datasets = [pydicom.dcmread(io.BytesIO(f)) for f in raw]
    srs = [d for d in datasets if d.SOPClassUID == COMPREHENSIVE_SR]
    pdfs = [d for d in datasets if d.SOPClassUID == ENCAPSULATED_PDF]
    assert len(srs) == 2 and len(pdfs) == 2
    automated = next(d for d in srs if d.get("VerificationFlag") != "VERIFIED")
    reviewed = next(d for d in srs if d.get("VerificationFlag") == "VERIFIED")
    assert reviewed.StudyInstanceUID == study and reviewed.PatientID == sent.PatientID
    assert reviewed.VerifyingObserverSequence[0].VerifyingObserverName.family_name == "grader-7"
    predecessor = reviewed.PredecessorDocumentsSequence[0]
    previous = predecessor.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert previous.ReferencedSOPInstanceUID == automated.SOPInstanceUID
    items = hd.sr.ComprehensiveSR.from_dataset(reviewed).ContentSequence
    said = {str(i.ConceptNameCodeSequence[0].CodeMeaning): i for i in items}
    texts = [str(i.TextValue) for i in items if "TextValue" in i]
    assert str(said["Reviewer who decided"].TextValue) == "reviewer grader-7"
    assert any("new vessels" in t for t in texts)
    assert str(said["Algorithm Name"].TextValue) == MODEL.split(":")[0]
    assert str(said["Algorithm Version"].TextValue) == MODEL.split(":")[1]  # shown to them
    path = tmp_path / "reviewed.dcm"
    path.write_bytes(files[reviewed.SOPInstanceUID])
    check_sr_file(path, laterality=str(sent.ImageLaterality), verdict="refer")  # dciodvfy too
    assert len({d.SOPInstanceUID for d in pdfs}) == 2
    assert all(d.StudyInstanceUID == study for d in pdfs)
    reviewed_pdf = next(d for d in pdfs if "reviewed" in str(d.DocumentTitle))
    assert bytes(reviewed_pdf.EncapsulatedDocument).startswith(b"%PDF")
    assert rows(service, "SELECT state FROM review_decisions") == [("reported",)]
    assert desk_cloud.store.case(case_id).reviewer == "grader-7"
    # ... and the EHR gets the amended DiagnosticReport, naming the reviewer.
    bundle = json.loads(fhir.read_text())
    (report,) = [e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "DiagnosticReport"]  # fmt: skip
    assert report["status"] == "amended" and report["conclusion"].startswith("Refer")
    assert report["performer"][0]["display"] == "reviewer grader-7"
