"""Decode and validate: every malformed scan gets a structured, actionable reason (no models)."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    MPEG2MPML,
    UID,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from edge.clinic.decode import (
    InvalidScanError,
    decode_pixels,
    read_header,
    sniff_format,
    strip_metadata,
)
from edge.clinic.validate import check_dicom, check_header, check_pixels, check_upload, identity
from shared.config.clinic import ClinicLimits
from shared.verdicts import Verdict

LIMITS = ClinicLimits()


def fundus_like(size: int = 512) -> np.ndarray:
    """A bright disc on black: enough structure for the decoders, no generator needed."""
    image = np.zeros((size, size, 3), np.uint8)
    cv2.circle(image, (size // 2, size // 2), int(size * 0.45), (40, 90, 170), -1)
    return image


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def png_bytes(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def dicom_bytes(
    image: np.ndarray,
    modality: str | None = "OP",
    syntax: UID = ExplicitVRLittleEndian,
    laterality: str | None = "L",
    patient_id: str | None = "PAT-001",
) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if modality is not None:
        ds.Modality = modality
    if laterality is not None:
        ds.ImageLaterality = laterality
    if patient_id is not None:
        ds.PatientID = patient_id
    rgb = image[:, :, ::-1]
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if syntax == ExplicitVRLittleEndian:
        ds.PixelData = rgb.tobytes()
    else:  # an encapsulated fragment we never decode: the syntax check must refuse first
        from pydicom.encaps import encapsulate

        ds.PixelData = encapsulate([b"\xff\xd8not-really-jpeg-ls\xff\xd9"])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def problem_of(fn, *args):
    with pytest.raises(InvalidScanError) as info:
        fn(*args)
    return info.value.problem


def test_formats_are_sniffed_from_magic_bytes_not_names() -> None:
    image = fundus_like(300)
    assert sniff_format(jpeg_bytes(image), "scan.png", "image/png") == "jpeg"
    assert sniff_format(png_bytes(image), None, None) == "png"
    assert sniff_format(dicom_bytes(image), None, None) == "dicom"
    assert sniff_format(b"%PDF-1.7 hello", "scan.jpg", "image/jpeg") is None


def test_jpeg_header_gives_size_and_channels_without_decoding() -> None:
    header = read_header(jpeg_bytes(fundus_like(320)), "jpeg")
    assert (header.width, header.height, header.channels, header.end_ok) == (320, 320, 3, True)


def test_truncated_jpeg_is_rejected_as_cut_short() -> None:
    data = jpeg_bytes(fundus_like(400))
    header = read_header(data[: len(data) // 2], "jpeg")
    problem = problem_of(check_header, header, LIMITS)
    assert (problem.code, problem.verdict) == ("truncated", Verdict.REJECTED)
    assert "cut short" in problem.message and "send it again" in problem.message


def test_jpeg_cut_inside_its_header_is_rejected() -> None:
    problem = problem_of(read_header, jpeg_bytes(fundus_like(300))[:40], "jpeg")
    assert problem.code == "truncated"


def test_png_bomb_header_is_refused_before_decoding() -> None:
    # A valid PNG signature and IHDR claiming 100,000 x 100,000 px, with almost no data.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    data = b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64
    header = read_header(data, "png")
    problem = problem_of(check_header, header, LIMITS)
    assert problem.code == "too_many_pixels"
    assert "100000x100000" in problem.message and "decompression bomb" in problem.message


def test_jpeg_bomb_header_is_refused_before_decoding() -> None:
    data = bytearray(jpeg_bytes(fundus_like(256)))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    problem = problem_of(check_header, read_header(bytes(data), "jpeg"), LIMITS)
    assert problem.code == "too_many_pixels"


def test_small_image_gets_retake_naming_the_size() -> None:
    problem = problem_of(check_header, read_header(png_bytes(fundus_like(120)), "png"), LIMITS)
    assert (problem.code, problem.verdict) == ("too_small", Verdict.RETAKE)
    assert "120x120" in problem.message and "256" in problem.message


def test_greyscale_image_gets_retake_asking_for_colour() -> None:
    grey = cv2.cvtColor(fundus_like(300), cv2.COLOR_BGR2GRAY)
    problem = problem_of(check_header, read_header(png_bytes(grey), "png"), LIMITS)
    assert (problem.code, problem.verdict) == ("channels", Verdict.RETAKE)
    assert "colour" in problem.message


def test_empty_and_oversized_uploads_are_rejected() -> None:
    assert problem_of(check_upload, b"", LIMITS).code == "empty"
    small = ClinicLimits(max_upload_bytes=2048)
    assert problem_of(check_upload, b"x" * 4096, small).code == "file_too_large"


def test_dicom_with_ct_modality_names_modality_and_what_to_send() -> None:
    header = read_header(dicom_bytes(fundus_like(300), modality="CT"), "dicom")
    problem = problem_of(check_dicom, header.dataset)
    assert problem.code == "modality"
    assert "'CT', expected 'OP' (ophthalmic photography) or 'XC'" in problem.message
    assert problem.message.endswith("send a fundus image")


def test_vl_photographic_xc_modality_is_accepted_on_both_tiers() -> None:
    from cloud.decode import decode_scan

    data = dicom_bytes(fundus_like(300), modality="XC")
    check_dicom(read_header(data, "dicom").dataset)
    assert decode_scan(data, "application/dicom").shape == (300, 300, 3)


def test_dicom_in_unsupported_compressed_syntax_is_rejected_with_export_advice() -> None:
    # MPEG-2 video: no image decoder here, whatever pydicom plugins are installed.
    header = read_header(dicom_bytes(fundus_like(300), syntax=MPEG2MPML), "dicom")
    problem = problem_of(check_dicom, header.dataset)
    assert (problem.code, problem.verdict) == ("transfer_syntax", Verdict.REJECTED)
    assert "MPEG2" in problem.message and "Explicit VR Little Endian" in problem.message


def test_dicom_missing_laterality_and_patient_is_accepted_but_flagged() -> None:
    data = dicom_bytes(fundus_like(300), laterality=None, patient_id=None)
    header = read_header(data, "dicom")
    check_dicom(header.dataset)
    check_header(header, LIMITS)
    found = identity(header, {})
    assert found.laterality is None and found.patient_id is None
    assert {"missing_laterality", "missing_patient_id"} <= set(found.flags)
    image = check_pixels(decode_pixels(data, header), header)
    assert image.shape == (300, 300, 3)


def test_dicom_pixels_come_back_in_bgr_order() -> None:
    image = fundus_like(300)
    data = dicom_bytes(image)
    header = read_header(data, "dicom")
    assert np.array_equal(decode_pixels(data, header), image)
    found = identity(header, {})
    assert (found.laterality, found.patient_id, found.flags) == ("L", "PAT-001", [])


def test_laterality_from_upload_metadata_is_normalised() -> None:
    header = read_header(jpeg_bytes(fundus_like(300)), "jpeg")
    assert identity(header, {"laterality": "OD", "patient_id": "x"}).laterality == "R"
    assert "unknown_laterality" in identity(header, {"laterality": "both"}).flags


def test_non_dicom_garbage_claiming_to_be_dicom_is_rejected() -> None:
    assert sniff_format(b"hello world" * 20, "scan.dcm", None) == "dicom"
    problem = problem_of(read_header, b"hello world" * 20, "dicom")
    assert problem.verdict == Verdict.REJECTED


def test_large_jpeg_is_decoded_at_full_size_like_the_cloud_does() -> None:
    # A reduced-scale (DCT) decode would hand the edge models other pixels than the grader's.
    from cloud.decode import decode_scan

    data = jpeg_bytes(fundus_like(2048))
    image = decode_pixels(data, read_header(data, "jpeg"))
    assert image.shape == (2048, 2048, 3)
    assert np.array_equal(image, decode_scan(data, "image/jpeg"))


def test_metadata_is_stripped_from_jpeg_but_pixels_stay_identical() -> None:
    data = jpeg_bytes(fundus_like(300))
    exif = b"Exif\x00\x00PatientName=DOE^JANE"
    comment = b"patient PAT-001"
    tagged = (
        data[:2]
        + b"\xff\xe1"
        + struct.pack(">H", len(exif) + 2)
        + exif
        + b"\xff\xfe"
        + struct.pack(">H", len(comment) + 2)
        + comment
        + data[2:]
    )
    stripped = strip_metadata(tagged, "jpeg")
    assert stripped is not None
    assert b"DOE^JANE" not in stripped and b"PAT-001" not in stripped
    assert np.array_equal(
        np.asarray(cv2.imdecode(np.frombuffer(stripped, np.uint8), cv2.IMREAD_COLOR)),
        np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)),
    )


def test_metadata_is_stripped_from_png() -> None:
    data = png_bytes(fundus_like(300))
    text = b"Author\x00DOE^JANE"
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + text))
    tagged = data[:33] + chunk + data[33:]
    assert b"DOE^JANE" in tagged
    stripped = strip_metadata(tagged, "png")
    assert stripped is not None and b"DOE^JANE" not in stripped
    decoded = np.asarray(cv2.imdecode(np.frombuffer(stripped, np.uint8), cv2.IMREAD_COLOR))
    assert np.array_equal(decoded, fundus_like(300))


def test_pydicom_reads_back_what_the_helper_writes() -> None:
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(fundus_like(260), modality="OP")))
    assert ds.Modality == "OP" and ds.Rows == 260


@pytest.mark.parametrize("syntax", ["explicit", "jpeg-baseline"])
def test_camera_dicom_decodes_to_the_same_colours(syntax: str) -> None:
    from sim.fundus.dicom import to_dicom_bytes
    from sim.fundus.generator import generate_sample

    sample = generate_sample(3, 1, size=320, defect_rate=0.0)
    data = to_dicom_bytes(sample, syntax=syntax)
    header = read_header(data, "dicom")
    check_dicom(header.dataset)
    image = decode_pixels(data, header).astype(np.int16)
    error = np.abs(image - sample.image_bgr.astype(np.int16)).mean(axis=(0, 1))
    assert (error < 4.0).all(), error  # per channel: lossy JPEG, but never swapped colours
