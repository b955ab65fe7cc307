"""Synthetic scans as Ophthalmic Photography 8-bit DICOM files, read back with pydicom."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from shared.errors import EdgewardError
from sim.fundus.cameras import camera_profile
from sim.fundus.dicom import OP_8BIT_SOP_CLASS, to_dicom_bytes, write_dicom
from sim.fundus.generator import FundusSample, generate_sample

REQUIRED = (
    "Modality",
    "ImageLaterality",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "AcquisitionDateTime",
    "Manufacturer",
    "ManufacturerModelName",
    "PhotometricInterpretation",
)


@pytest.fixture(scope="module")
def sample() -> FundusSample:
    return generate_sample(12, 7, size=192, grade=3)


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def _check_op_tags(ds: pydicom.Dataset, sample: FundusSample) -> None:
    cam = camera_profile(sample.labels.camera)
    assert ds.SOPClassUID == OP_8BIT_SOP_CLASS
    assert ds.Modality == "OP"
    assert ds.ImageLaterality == sample.labels.laterality
    assert ds.PatientID == f"SIM12-{7:06d}"
    assert ds.Manufacturer == cam.manufacturer
    assert ds.ManufacturerModelName == cam.model
    assert ds.AcquisitionDateTime.startswith("2026")
    for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert pydicom.uid.UID(uid).is_valid
    assert len({ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}) == 3
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.BitsAllocated) == (192, 192, 3, 8)


def test_explicit_vr_file_reads_back_with_exact_pixels_and_op_tags(
    sample: FundusSample, tmp_path: Path
):
    path = tmp_path / "scan.dcm"
    write_dicom(path, sample)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.PhotometricInterpretation == "RGB"
    _check_op_tags(ds, sample)
    assert np.array_equal(ds.pixel_array, sample.image_bgr[..., ::-1])


def test_jpeg_baseline_file_is_ybr_full_422_and_decodes_close_to_the_scan(sample: FundusSample):
    ds = _read(to_dicom_bytes(sample, syntax="jpeg-baseline"))
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    assert ds.LossyImageCompression == "01"
    _check_op_tags(ds, sample)
    rgb = ds.pixel_array  # pydicom converts YBR to RGB
    assert rgb.shape == (192, 192, 3)
    assert np.abs(rgb.astype(int) - sample.image_bgr[..., ::-1]).mean() < 4.0


@pytest.mark.parametrize("syntax", ["explicit", "jpeg-baseline"])
def test_omitted_tags_are_absent_and_the_rest_still_reads(sample: FundusSample, syntax: str):
    ds = _read(to_dicom_bytes(sample, syntax=syntax, omit=["ImageLaterality", "PatientID"]))
    assert "ImageLaterality" not in ds and "PatientID" not in ds
    assert ds.Modality == "OP"
    assert ds.pixel_array.shape == (192, 192, 3)
    for kw in REQUIRED:
        if kw not in ("ImageLaterality", "PatientID"):
            assert kw in ds


def test_every_required_tag_can_be_left_out(sample: FundusSample):
    ds = _read(to_dicom_bytes(sample, omit=REQUIRED))
    assert not any(kw in ds for kw in REQUIRED)


def test_tag_overrides_let_tests_build_wrong_files(sample: FundusSample):
    ds = _read(to_dicom_bytes(sample, Modality="CT", patient_id="P-42"))
    assert ds.Modality == "CT" and ds.PatientID == "P-42"


def test_same_sample_gives_byte_identical_files(sample: FundusSample):
    assert to_dicom_bytes(sample) == to_dicom_bytes(sample)


def test_misspelt_or_vital_tags_are_refused(sample: FundusSample):
    with pytest.raises(EdgewardError, match="'ImageLaterallity' is unknown"):
        to_dicom_bytes(sample, omit=["ImageLaterallity"])
    with pytest.raises(EdgewardError, match="PixelData cannot be left out"):
        to_dicom_bytes(sample, omit=["PixelData"])
    with pytest.raises(EdgewardError, match="syntax 'jpeg-ls'"):
        to_dicom_bytes(sample, syntax="jpeg-ls")


@pytest.mark.parametrize("syntax", ["jpeg2000", "rle", "deflate"])
def test_lossless_compressed_files_read_back_with_exact_pixels(sample: FundusSample, syntax: str):
    from sim.fundus.dicom import SYNTAXES

    ds = _read(to_dicom_bytes(sample, syntax=syntax))
    assert ds.file_meta.TransferSyntaxUID == SYNTAXES[syntax]
    _check_op_tags(ds, sample)
    assert np.array_equal(ds.pixel_array, sample.image_bgr[..., ::-1])
