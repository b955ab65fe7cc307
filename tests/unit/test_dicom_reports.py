"""The SR, PDF and FHIR report of a final result, built from controlled inputs and read back."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from fhir.resources.R4B.bundle import Bundle
from PIL import Image

from edge.clinic.reports.content import FinalResult
from edge.clinic.reports.fhir import bundle_json
from edge.clinic.reports.pdf import ENCAPSULATED_PDF, pdf_bytes, render_page
from edge.clinic.reports.sr import sr_bytes
from sim.fundus.dicom import to_dicom_bytes
from sim.fundus.generator import generate_sample
from tests.unit.dicom_report_checks import check_sr_file


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), (255, 0, 0), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def image() -> pydicom.Dataset:
    data = to_dicom_bytes(generate_sample(21, 3, size=160, grade=3), "jpeg-baseline")
    return pydicom.dcmread(io.BytesIO(data))


def result(image: pydicom.Dataset, **changes: object) -> FinalResult:
    values: dict[str, object] = {
        "scan_id": str(image.SOPInstanceUID),
        "source": "cloud",
        "verdict": "refer",
        "reasons": ["microaneurysms near the fovea"],
        "confidence": 0.91,
        "referable_probability": 0.83,
        "grade_probabilities": [0.05, 0.12, 0.4, 0.33, 0.1],
        "model_name": "fundus-grader",
        "model_version": "7",
        "laterality": "L",
        "image": image,
        "heatmap_png": _png(),
    }
    values.update(changes)
    return FinalResult(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("verdict", "eye"), [("refer", "L"), ("no_refer", "R")])
def test_sr_is_in_the_study_codes_the_result_and_validates(image, tmp_path: Path, verdict, eye):
    data = sr_bytes(result(image, verdict=verdict, laterality=eye), "Clinic")
    (tmp_path / "sr.dcm").write_bytes(data)
    check_sr_file(tmp_path / "sr.dcm", laterality=eye, verdict=verdict)
    sr = pydicom.dcmread(io.BytesIO(data))
    assert sr.StudyInstanceUID == image.StudyInstanceUID
    assert sr.PatientID == image.PatientID
    assert sr.SeriesInstanceUID != image.SeriesInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    referenced = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert referenced.ReferencedSOPInstanceUID == image.SOPInstanceUID
    numbers = {
        str(i.ConceptNameCodeSequence[0].CodeMeaning): float(
            i.MeasuredValueSequence[0].NumericValue
        )
        for i in sr.ContentSequence
        if i.ValueType == "NUM"
    }
    assert numbers["Probability of referable DR"] == pytest.approx(0.83)
    assert numbers["Probability of ICDR grade 2"] == pytest.approx(0.4)


def test_same_result_gives_the_same_sr_instance_uid(image):
    first = pydicom.dcmread(io.BytesIO(sr_bytes(result(image), "Clinic")))
    again = pydicom.dcmread(io.BytesIO(sr_bytes(result(image), "Clinic")))
    assert first.SOPInstanceUID == again.SOPInstanceUID  # a PACS dedupes a rebuilt report


def test_pdf_is_an_encapsulated_pdf_in_the_study(image):
    ds = pydicom.dcmread(io.BytesIO(pdf_bytes(result(image), "Clinic")))
    assert ds.SOPClassUID == ENCAPSULATED_PDF
    assert ds.StudyInstanceUID == image.StudyInstanceUID
    document = bytes(ds.EncapsulatedDocument)[: ds.EncapsulatedDocumentLength]
    assert document.startswith(b"%PDF") and document.rstrip().endswith(b"%%EOF")
    assert document.count(b"/Subtype /Image") == 1  # Pillow writes the page as one raster


def test_pdf_page_shows_the_overlay_only_when_there_is_one(image, tmp_path: Path):
    with_overlay = np.asarray(render_page(result(image), "Clinic"))
    render_page(result(image), "Clinic").save(tmp_path / "page.png")
    without = np.asarray(render_page(result(image, heatmap_png=b""), "Clinic"))
    red = (255, 0, 0)  # the stand-in overlay is pure red; a fundus photo never is
    assert (with_overlay == red).all(axis=-1).sum() > 10_000
    assert (without == red).all(axis=-1).sum() == 0


def bundle(data: bytes) -> dict[str, Any]:
    """Validated as an R4(B) Bundle, then read as plain JSON."""
    Bundle.model_validate_json(data)
    return json.loads(data)


def test_edge_result_without_probability_still_reports(image):
    edge = result(
        image,
        source="edge",
        verdict="ungradable",
        referable_probability=None,
        grade_probabilities=[],
        heatmap_png=b"",
    )
    entries = bundle(bundle_json(edge))["entry"]
    kinds = [e["resource"]["resourceType"] for e in entries]
    assert kinds == ["Observation", "Observation", "DiagnosticReport"]
    report = entries[-1]["resource"]
    assert report["conclusion"].startswith("The image could not be graded")
    assert report["subject"]["identifier"]["value"] == image.PatientID
    assert pydicom.dcmread(io.BytesIO(pdf_bytes(edge, "Clinic"))).Modality == "DOC"


def test_fhir_bundle_holds_verdict_probability_and_eye(image):
    entries = bundle(bundle_json(result(image)))["entry"]
    values = {e["resource"]["code"]["coding"][0]["code"]: e["resource"] for e in entries[:-1]}
    assert values["dr-screening"]["valueCodeableConcept"]["coding"][0]["code"] == "refer"
    assert values["referable-probability"]["valueQuantity"]["value"] == pytest.approx(0.83)
    assert values["dr-screening"]["bodySite"]["coding"][0]["code"] == "362502000"  # left eye
    refs = {r["reference"] for r in entries[-1]["resource"]["result"]}
    assert refs == {e["fullUrl"] for e in entries[:-1]}
