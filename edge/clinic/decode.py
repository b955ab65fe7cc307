"""Scan bytes -> pixels at the clinic gateway: shared.scan_decode's rule, edge error types.

The decoding itself (formats, 16-bit scaling, MONOCHROME1, palettes, size limits) lives in
shared/scan_decode.py so the cloud grader sees exactly the pixels the edge triage saw; this
module turns its errors into Problems the pipeline reports, and strips what may not leave.
"""

from __future__ import annotations

import re
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
    data: bytes,
    header: ImageHeader,
    limits: DecodeLimits = DEFAULT_LIMITS,
    *,
    min_side: int | None = None,
) -> np.ndarray:
    """Pixels as uint8 BGR (HxWx3), exactly as the cloud decodes them; InvalidScanError if not.

    `min_side`: shared.scan_decode's reduced-size decode (JPEG DCT scaling), same rule as cloud.
    """
    try:
        return _shared_decode_pixels(data, header, limits, min_side=min_side)
    except ScanDecodeError as exc:
        raise as_invalid(exc) from exc


# ---- what may leave the gateway ----

# Chunks that shape the pixels; everything else (tEXt, zTXt, iTXt, eXIf, tIME, iCCP with its
# free-text profile name, private chunks) and anything after IEND stays at the clinic.
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT"}
# JPEG segments a decoder needs: SOFn, DHT, DAC, DQT, DRI, DNL. No APPn, COM or JPGn survives.
_JPEG_KEEP = {*range(0xC0, 0xD0), 0xDB, 0xDD, 0xDC} - {0xC8}  # C8: reserved, free content
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
# Inside entropy-coded data FF is followed by 00 (stuffing) or D0-D7 (restart); else a marker.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")


def strip_metadata(data: bytes, fmt: str) -> bytes | None:
    """The same JPEG/PNG with nothing but what decodes the first image: no EXIF, XMP, ICC,
    comments, trailers or embedded second images (names, dates, device serials, thumbnails).

    None for formats that must be re-encoded from pixels instead (DICOM, TIFF).
    InvalidScanError if the structure cannot be followed: nothing unchecked is passed on.
    """
    try:
        if fmt == "jpeg":
            return _strip_jpeg(data)
        if fmt == "png":
            return _strip_png(data)
    except (struct.error, IndexError, ValueError) as exc:
        raise invalid(
            "strip_failed",
            f"the {fmt.upper()} structure cannot be followed to remove its metadata ({exc}); "
            "nothing was sent to the cloud — send the file again from the camera",
        ) from exc
    return None


def _strip_jpeg(data: bytes) -> bytes:
    """Rebuild the first image from its decoding segments, up to its EOI and no further."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("no start-of-image marker")
    out = bytearray(b"\xff\xd8")
    pos = 2
    while pos < len(data) - 1:
        if data[pos] != 0xFF:
            raise ValueError(f"expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            break  # end of the first image: trailers and appended images stay behind
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise ValueError(f"segment FF{marker:02X} at byte {pos} runs past the file")
        if marker in _JPEG_KEEP:
            out += data[pos:end]
        elif marker == 0xEE and data[pos + 4 : pos + 9] == b"Adobe" and length >= 14:
            # The colour transform flag changes how the pixels decode; keep only that byte in
            # a fresh segment, not the original's version and flag fields.
            transform = data[pos + 15 : pos + 16]
            out += b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00" + transform
        elif marker == 0xDA:  # start of scan: copy it and its entropy-coded data
            found = _SCAN_END.search(data, end)
            scan_end = found.start() if found else len(data)
            out += data[pos:scan_end]
            pos = scan_end
            continue
        pos = end
    out += b"\xff\xd9"
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
