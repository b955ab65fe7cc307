"""Scan bytes -> pixels at the clinic gateway: shared.scan_decode's rule, edge error types.

The decoding itself (formats, 16-bit scaling, MONOCHROME1, palettes, size limits) lives in
shared/scan_decode.py so the cloud grader sees exactly the pixels the edge triage saw; this
module turns its errors into Problems the pipeline reports, and strips what may not leave.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from shared.scan_decode import (
    DEFAULT_LIMITS,
    FORMATS,
    DecodeLimits,
    ScanDecodeError,
    ScanHeader,
    sniff_format,
)
from shared.scan_decode import decode_pixels as _shared_decode_pixels
from shared.scan_decode import read_header as _shared_read_header
from shared.verdicts import Verdict

__all__ = [
    "FORMATS",
    "ImageHeader",
    "InvalidScanError",
    "Problem",
    "decode_pixels",
    "invalid",
    "read_header",
    "sniff_format",
    "strip_metadata",
]

ImageHeader = ScanHeader  # the name the pipeline and validate know


@dataclass(frozen=True)
class Problem:
    """Why a scan cannot be judged: a machine code, plain words, and the verdict it forces."""

    code: str
    message: str
    verdict: Verdict = Verdict.REJECTED


class InvalidScanError(Exception):
    """Raised by decode/validate steps; the pipeline turns it into a verdict, never a crash."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def invalid(code: str, message: str, verdict: Verdict = Verdict.REJECTED) -> InvalidScanError:
    return InvalidScanError(Problem(code, message, verdict))


# A wrong modality is a wrong photo, not a broken file: the operator can take the right one.
_RETAKE_CODES = {"modality"}


def as_invalid(exc: ScanDecodeError) -> InvalidScanError:
    verdict = Verdict.RETAKE if exc.code in _RETAKE_CODES else Verdict.REJECTED
    return invalid(exc.code, str(exc), verdict)


def read_header(data: bytes, fmt: str, limits: DecodeLimits = DEFAULT_LIMITS) -> ImageHeader:
    """Dimensions and channel count from the file header; InvalidScanError if unreadable.

    A deflated DICOM is inflated here, only within limits.max_inflated_bytes.
    """
    try:
        return _shared_read_header(data, fmt, limits)
    except ScanDecodeError as exc:
        raise as_invalid(exc) from exc


def decode_pixels(
    data: bytes, header: ImageHeader, limits: DecodeLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """Pixels as uint8 BGR (HxWx3), exactly as the cloud decodes them; InvalidScanError if not."""
    try:
        return _shared_decode_pixels(data, header, limits)
    except ScanDecodeError as exc:
        raise as_invalid(exc) from exc


# ---- what may leave the gateway ----

_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP"}
_PNG_KEEP |= {b"sBIT", b"pHYs"}


def strip_metadata(data: bytes, fmt: str) -> bytes | None:
    """The same JPEG/PNG without text, EXIF or comments (names, dates, device serials).

    None for formats that must be re-encoded from pixels instead (DICOM, TIFF).
    """
    if fmt == "jpeg":
        return _strip_jpeg(data)
    if fmt == "png":
        return _strip_png(data)
    return None


def _strip_jpeg(data: bytes) -> bytes:
    out = bytearray(data[:2])
    pos = 2
    while pos < len(data) - 1:
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            out += data[pos : pos + 2]
            pos += 2
            continue
        if marker == 0xDA:
            out += data[pos:]
            return bytes(out)
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos : pos + 2 + length]
        # Keep JFIF (APP0), the ICC profile (APP2) and Adobe colour transform (APP14);
        # drop EXIF/XMP (APP1), maker notes, other APPn and comments.
        icc = marker == 0xE2 and segment[4:15] == b"ICC_PROFILE"
        if not (0xE0 < marker <= 0xEF or marker == 0xFE) or icc or marker == 0xEE:
            out += segment
        pos += 2 + length
    return bytes(out)


def _strip_png(data: bytes) -> bytes:
    out = bytearray(data[:8])
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind in _PNG_KEEP:
            out += data[pos : pos + 12 + length]
        pos += 12 + length
        if kind == b"IEND":
            break
    return bytes(out)
