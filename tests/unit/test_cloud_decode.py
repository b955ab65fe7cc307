"""Decoding uploads: PNG, JPEG and DICOM become BGR images; bad input gets a reason."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cloud.decode import BadScanError, decode_scan
from sim.fundus.dicom import to_dicom_bytes
from sim.fundus.generator import generate_sample


@pytest.fixture(scope="module")
def sample():
    return generate_sample(7, 0, size=256, defect_rate=0.0)


def test_png_and_jpeg_decode_to_the_same_bgr_image(sample):
    png = cv2.imencode(".png", sample.image_bgr)[1].tobytes()
    jpeg = cv2.imencode(".jpg", sample.image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    from_png = decode_scan(png, "image/png", "s1")
    from_jpeg = decode_scan(jpeg, "image/jpeg; charset=binary", "s1")
    assert np.array_equal(from_png, sample.image_bgr)
    assert from_jpeg.shape == sample.image_bgr.shape
    assert np.abs(from_jpeg.astype(int) - sample.image_bgr.astype(int)).mean() < 4


@pytest.mark.parametrize("syntax", ["explicit", "jpeg-baseline"])
def test_dicom_decodes_with_colours_in_bgr_order(sample, syntax):
    image = decode_scan(to_dicom_bytes(sample, syntax=syntax), "application/dicom", "s1")
    assert image.shape == sample.image_bgr.shape
    # channel order preserved: mean per channel close to the source (JPEG is lossy)
    assert np.allclose(image.mean(axis=(0, 1)), sample.image_bgr.mean(axis=(0, 1)), atol=4)


def test_dicom_of_another_modality_is_refused_with_the_modality_named(sample):
    data = to_dicom_bytes(sample, Modality="CT")
    with pytest.raises(BadScanError, match=r"Modality is 'CT', expected 'OP'"):
        decode_scan(data, "application/dicom", "scan-9")


@pytest.mark.parametrize(
    ("body", "ctype", "message"),
    [
        (b"", "image/png", "body is empty"),
        (b"not an image", "image/png", "not a readable image/png"),
        (b"\x89PNG", "text/plain", "content type 'text/plain' is not supported"),
        (b"DICM but not really", "application/dicom", "not a readable DICOM"),
    ],
)
def test_bad_upload_names_the_scan_and_the_fix(body, ctype, message):
    with pytest.raises(BadScanError, match=message) as err:
        decode_scan(body, ctype, "scan-42")
    assert "scan-42" in str(err.value)


def test_tiny_image_is_refused():
    png = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))[1].tobytes()
    with pytest.raises(BadScanError, match="smaller than 64x64"):
        decode_scan(png, "image/png", "s")
