"""Decoding straight to the analysis size through the one shared decoder: JPEG (and DICOM JPEG
Baseline) by DCT scaling, DICOM JPEG 2000 by dropping resolution levels."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from pydicom.encaps import encapsulate, generate_frames

from edge.clinic.decode import decode_pixels, read_header, sniff_format
from shared import scan_decode, scan_dicom
from shared.scan_decode import ScanHeader, decode, reduction_for
from sim.fundus.dicom import to_dicom_bytes
from sim.fundus.generator import generate_sample
from tests.scan_corpus import Case, corpus

CASES = corpus(size=1030)  # not a multiple of 8: the reduced sides round up


def _jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(
    ("fmt", "side", "min_side", "factor"),
    [
        ("jpeg", 2048, 512, 4),
        ("jpeg", 2048, 1024, 2),
        ("jpeg", 2048, 2048, 1),
        ("jpeg", 4096, 512, 8),
        ("jpeg", 4095, 512, 4),  # 4095 // 8 = 511 < 512
        ("jpeg", 1000, 512, 1),
        ("jpeg", 2048, None, 1),
        ("png", 2048, 512, 1),  # no codec scaling: decoded whole
        ("dicom", 2048, 512, 1),  # no dataset: nothing says it holds a baseline JPEG
    ],
)
def test_reduction_keeps_the_longest_side_at_least_min_side(
    fmt: str, side: int, min_side: int | None, factor: int
) -> None:
    header = ScanHeader(fmt, side, side * 3 // 4, 3)
    assert reduction_for(header, min_side) == factor


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_edge_and_shared_decoders_agree_at_reduced_size(case: Case) -> None:
    fmt = sniff_format(case.data, None, case.content_type)
    assert fmt is not None
    header = read_header(case.data, fmt)
    edge = decode_pixels(case.data, header, min_side=256)
    shared, shared_header = decode(case.data, case.name, case.content_type, min_side=256)
    assert np.array_equal(edge, shared)
    factor = reduction_for(shared_header, 256)
    h, w = case.expected_bgr.shape[:2]
    assert edge.shape == (-(-h // factor), -(-w // factor), 3)
    full = decode(case.data, case.name, case.content_type)[0]
    if fmt == "jpeg" or case.name in ("dicom-jpeg-baseline", "dicom-jpeg2000"):
        assert factor == 4
        # The codec's own 1/4 scale: the same picture as an area resize of the full decode.
        area = cv2.resize(full, edge.shape[1::-1], interpolation=cv2.INTER_AREA)
        error = np.abs(edge.astype(np.int16) - area.astype(np.int16)).mean(axis=(0, 1))
        assert (error < 1.5).all(), error  # per channel: never swapped or inverted
    else:  # formats without codec scaling decode exactly as without min_side
        assert factor == 1
        assert np.array_equal(edge, full)


def test_a_2048px_twin_jpeg_decodes_to_512px_close_to_an_area_resize_of_the_full_decode() -> None:
    image = generate_sample(seed=3, index=1, size=2048, defect_rate=0.0).image_bgr
    data = _jpeg(image)
    reduced, header = decode(data, "scan.jpg", "image/jpeg", min_side=512)
    full, _ = decode(data, "scan.jpg", "image/jpeg")
    assert reduction_for(header, 512) == 4
    assert reduced.shape == (512, 512, 3) and reduced.dtype == np.uint8
    area = cv2.resize(full, (512, 512), interpolation=cv2.INTER_AREA)
    error = np.abs(reduced.astype(np.int16) - area.astype(np.int16)).mean(axis=(0, 1))
    assert (error < 1.0).all(), error  # per channel: same picture, never swapped
    assert not np.array_equal(reduced, area)  # really the codec's own scaling


def test_a_dicom_jpeg_is_scaled_only_where_libjpeg_decodes_its_colour_as_pydicom_does() -> None:
    sample = generate_sample(seed=3, index=2, size=600, defect_rate=0.0)
    header = scan_decode.read_header(to_dicom_bytes(sample, syntax="jpeg-baseline"), "dicom")
    assert reduction_for(header, 150) == 4
    header.dataset.PhotometricInterpretation = "RGB"  # an untransformed RGB baseline JPEG
    assert reduction_for(header, 150) == 1
    header.dataset.PhotometricInterpretation = "YBR_FULL_422"
    header.dataset.NumberOfFrames = 2
    assert reduction_for(header, 150) == 1
    explicit = scan_decode.read_header(to_dicom_bytes(sample, syntax="explicit"), "dicom")
    assert reduction_for(explicit, 150) == 1  # raw pixels: nothing for a codec to skip


def test_a_j2k_dicom_with_too_few_resolution_levels_still_decodes_to_the_promised_size() -> None:
    sample = generate_sample(seed=3, index=4, size=600, defect_rate=0.0)
    data = to_dicom_bytes(sample, syntax="jpeg2000")
    header = scan_decode.read_header(data, "dicom")
    ds = header.dataset
    rgb = ds.pixel_array
    # Re-encode with one resolution level only: OpenJPEG can then skip nothing.
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG2000", irreversible=False, num_resolutions=1)
    ds.PixelData = encapsulate([buf.getvalue()])
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert scan_dicom.reduced_j2k(frame, 4) is None  # the codec cannot do it
    assert reduction_for(header, 150) == 4
    image = scan_decode.decode_pixels(data, header, min_side=150)
    assert image.shape == (150, 150, 3)
    area = cv2.resize(rgb[:, :, ::-1], (150, 150), interpolation=cv2.INTER_AREA)
    assert np.array_equal(image, area)  # the whole decode, area-averaged to that size
