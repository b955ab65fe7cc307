"""What leaves the gateway: only the segments that decode the first image, same pixels."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from edge.clinic.decode import InvalidScanError, decode_pixels, read_header, strip_metadata
from tests.scan_corpus import fundus_bgr

SECRETS = [b"PATIENT-%d" % i for i in range(8)]
DECODING_MARKERS = {0xD8, 0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xDD, 0xDA, 0xD9}


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(image: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, list(params))
    assert ok
    return buf.tobytes()


def markers(data: bytes) -> list[int]:
    """Every marker of a JPEG in order, stepping over segments and entropy-coded data."""
    found, pos = [], 0
    while pos < len(data) - 1:
        assert data[pos] == 0xFF, f"no marker at {pos}"
        marker = data[pos + 1]
        found.append(marker)
        if marker in (0xD8, 0xD9):
            pos += 2
            if marker == 0xD9:
                assert pos == len(data), "bytes after EOI"
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
        if marker == 0xDA:
            while not (data[pos] == 0xFF and data[pos + 1] not in (0, *range(0xD0, 0xD8))):
                pos += 1
    return found


def decoded(data: bytes) -> np.ndarray:
    return decode_pixels(data, read_header(data, "jpeg"))


def tagged_progressive_jpeg() -> tuple[bytes, bytes]:
    """A progressive JPEG carrying identity everywhere a camera or editor might put it."""
    clean = jpeg(fundus_bgr(128), cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    exif = segment(0xE1, b"Exif\0\0" + SECRETS[0])
    comment = segment(0xFE, SECRETS[1])
    icc = segment(0xE2, b"ICC_PROFILE\0\x01\x01" + SECRETS[2])
    xmp = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + SECRETS[3])
    body = clean[2:-2]
    second_scan = body.find(b"\xff\xda", body.find(b"\xff\xda") + 2)
    assert second_scan > 0, "expected a multi-scan progressive JPEG"
    # An APP1 after the first scan (between scans) and another COM before EOI.
    body = body[:second_scan] + segment(0xE1, b"Exif\0\0" + SECRETS[4]) + body[second_scan:]
    body += segment(0xFE, SECRETS[5])
    thumb = jpeg(fundus_bgr(64))
    second = thumb[:2] + segment(0xE1, b"Exif\0\0" + SECRETS[6]) + thumb[2:]
    trailer = b"Exif\0\0" + SECRETS[7] + second  # e.g. an MPF/maker-note trailer image
    tagged = clean[:2] + exif + comment + icc + xmp + body + b"\xff\xd9" + trailer
    return tagged, clean


def test_no_appn_com_or_trailer_survives_stripping() -> None:
    tagged, clean = tagged_progressive_jpeg()
    assert all(secret in tagged for secret in SECRETS)
    stripped = strip_metadata(tagged, "jpeg")
    assert stripped is not None
    for secret in SECRETS:
        assert secret not in stripped
    found = markers(stripped)
    assert set(found) <= DECODING_MARKERS, [hex(m) for m in found]
    assert found[0] == 0xD8 and found[-1] == 0xD9 and found.count(0xD8) == 1
    assert found.count(0xDA) > 1  # every progressive scan kept
    assert np.array_equal(decoded(stripped), decoded(clean))
    assert np.array_equal(decoded(stripped), decoded(tagged))


def test_baseline_jpeg_with_restart_markers_strips_to_the_same_pixels() -> None:
    clean = jpeg(fundus_bgr(128), cv2.IMWRITE_JPEG_RST_INTERVAL, 4)
    tagged = clean[:2] + segment(0xE1, b"Exif\0\0" + SECRETS[0]) + clean[2:] + SECRETS[1]
    stripped = strip_metadata(tagged, "jpeg")
    assert stripped is not None and SECRETS[0] not in stripped and SECRETS[1] not in stripped
    assert 0xDD in markers(stripped)
    assert np.array_equal(decoded(stripped), decoded(clean))


def test_adobe_colour_transform_is_kept_as_a_fresh_minimal_segment() -> None:
    buf = io.BytesIO()
    rgb = np.ascontiguousarray(fundus_bgr(96)[:, :, ::-1])
    Image.fromarray(rgb).convert("CMYK").save(buf, format="JPEG", quality=95)
    data = buf.getvalue()
    assert b"Adobe" in data
    stripped = strip_metadata(data, "jpeg")
    assert stripped is not None
    adobe = stripped.find(b"\xff\xee")
    assert stripped[adobe : adobe + 4] == b"\xff\xee\x00\x0e"  # 12 bytes: name, zeros, flag
    assert set(markers(stripped)) <= DECODING_MARKERS | {0xEE}
    assert np.array_equal(decoded(stripped), decoded(data))


def test_jpeg_whose_segments_run_past_the_end_is_not_passed_on() -> None:
    data = jpeg(fundus_bgr(64))
    broken = data[:2] + b"\xff\xe1\xff\xf0" + b"x" * 10
    with pytest.raises(InvalidScanError) as err:
        strip_metadata(broken, "jpeg")
    assert err.value.problem.code == "strip_failed" and "nothing was sent" in str(err.value)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + payload))
    return struct.pack(">I", len(payload)) + kind + payload + crc


def test_png_text_exif_icc_and_trailer_are_dropped() -> None:
    ok, buf = cv2.imencode(".png", fundus_bgr(96))
    assert ok
    clean = buf.tobytes()
    extra = _chunk(b"tEXt", b"Author\0" + SECRETS[0]) + _chunk(b"eXIf", SECRETS[1])
    extra += _chunk(b"iCCP", SECRETS[2] + b"\0\0" + zlib.compress(b"profile"))
    tagged = clean[:33] + extra + clean[33:] + SECRETS[3]
    stripped = strip_metadata(tagged, "png")
    assert stripped is not None
    assert not any(secret in stripped for secret in SECRETS)
    assert stripped.endswith(b"IEND\xaeB`\x82")
    png = read_header(stripped, "png")
    assert np.array_equal(decode_pixels(stripped, png), decode_pixels(clean, png))
