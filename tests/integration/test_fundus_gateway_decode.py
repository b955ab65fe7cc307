"""The twin's files through the clinic gateway's own decoder (edge as a black box)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.clinic.decode import decode_pixels, read_header, sniff_format
from edge.clinic.validate import check_dicom, identity
from sim.fundus.dataset import write_image
from sim.fundus.dicom import to_dicom_bytes
from sim.fundus.generator import FundusSample, generate_sample


@pytest.fixture(scope="module")
def sample() -> FundusSample:
    return generate_sample(13, 2, size=256, grade=2)


def _decode(data: bytes) -> tuple[np.ndarray, object]:
    fmt = sniff_format(data, None, None)
    assert fmt is not None
    header = read_header(data, fmt)
    return decode_pixels(data, header), header


def test_explicit_vr_dicom_decodes_to_the_exact_scan_with_its_identity(sample: FundusSample):
    pixels, header = _decode(to_dicom_bytes(sample))
    check_dicom(header.dataset)  # type: ignore[attr-defined]
    assert np.array_equal(pixels, sample.image_bgr)
    who = identity(header, {})  # type: ignore[arg-type]
    assert who.laterality == sample.labels.laterality
    assert who.patient_id == f"SIM13-{2:06d}"
    assert who.flags == []


def test_omitted_tags_show_up_as_identity_flags_not_refusals(sample: FundusSample):
    data = to_dicom_bytes(sample, omit=["ImageLaterality", "PatientID", "Modality"])
    pixels, header = _decode(data)
    check_dicom(header.dataset)  # type: ignore[attr-defined]
    who = identity(header, {})  # type: ignore[arg-type]
    assert set(who.flags) == {"missing_laterality", "missing_patient_id", "missing_modality"}
    assert pixels.shape == (256, 256, 3)


def test_jpeg_baseline_dicom_decodes_close_to_the_scan(sample: FundusSample):
    pixels, _ = _decode(to_dicom_bytes(sample, syntax="jpeg-baseline"))
    assert np.abs(pixels.astype(int) - sample.image_bgr).mean() < 4.0


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_png_and_jpeg_files_decode_to_the_scan(sample: FundusSample, fmt: str, tmp_path):
    path = tmp_path / f"scan.{fmt}"
    write_image(path, sample, fmt)
    pixels, _ = _decode(path.read_bytes())
    tolerance = 0.0 if fmt == "png" else 4.0
    assert np.abs(pixels.astype(int) - sample.image_bgr).mean() <= tolerance
