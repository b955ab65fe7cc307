"""Edge and cloud decode every scan variant to identical pixels, and to the right ones."""

from __future__ import annotations

import numpy as np
import pytest

from cloud.decode import decode_scan
from edge.clinic.decode import decode_pixels, read_header, sniff_format, strip_metadata
from tests.scan_corpus import Case, corpus

CASES = corpus()


def edge_decode(case: Case) -> np.ndarray:
    fmt = sniff_format(case.data, None, case.content_type)
    assert fmt is not None
    return decode_pixels(case.data, read_header(case.data, fmt))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_edge_and_cloud_decode_to_identical_pixels(case: Case) -> None:
    edge = edge_decode(case)
    cloud = decode_scan(case.data, case.content_type, case.name)
    assert edge.dtype == cloud.dtype == np.uint8
    assert edge.shape == cloud.shape == case.expected_bgr.shape
    assert np.array_equal(edge, cloud)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decoded_pixels_are_the_source_image(case: Case) -> None:
    got = edge_decode(case).astype(np.int16)
    error = np.abs(got - case.expected_bgr.astype(np.int16)).mean(axis=(0, 1))
    assert (error <= case.tolerance).all(), error  # per channel: never swapped or inverted


def test_corpus_covers_every_variant_the_issue_names() -> None:
    names = " ".join(c.name for c in CASES)
    for variant in ("8bit", "16bit", "mono1", "palette", "jpeg-baseline", "jpeg2000", "rle"):
        assert variant in names
    assert "deflate" in names and "png" in names and "jpeg-colour" in names


RASTERS = [c for c in CASES if c.content_type != "application/dicom"]


@pytest.mark.parametrize("case", RASTERS, ids=[c.name for c in RASTERS])
def test_the_stripped_copy_the_cloud_grades_decodes_to_the_edge_pixels(case: Case) -> None:
    fmt = sniff_format(case.data, None, case.content_type)
    assert fmt is not None
    copy = strip_metadata(case.data, fmt)
    assert copy is not None
    assert np.array_equal(decode_scan(copy, case.content_type), edge_decode(case))
