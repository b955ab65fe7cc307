"""Turn uploaded scan bytes (PNG, JPEG or DICOM) into a BGR image, or say clearly why not.

The decoding rule is shared.scan_decode's, the one the clinic gateway uses, so the grader sees
the pixels the edge triage saw; this module adds the cloud's content types and error type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.errors import EdgewardError
from shared.scan_decode import (
    DEFAULT_LIMITS,
    DecodeLimits,
    ScanDecodeError,
    decode,
    reduction_for,
)

MAX_BYTES = 64 * 1024 * 1024  # a 4k x 4k 16-bit DICOM is ~100 MB uncompressed; fundus are smaller
MIN_SIDE = 64
CONTENT_TYPES = ("image/png", "image/jpeg", "application/dicom")
_FORMAT_OF = {"image/png": "png", "image/jpeg": "jpeg", "application/dicom": "dicom"}


class BadScanError(EdgewardError):
    """The uploaded bytes are not a scan the grader can read; the message says what to send."""


def normalise_content_type(value: str | None) -> str:
    """`image/jpeg; charset=...` -> `image/jpeg`; aliases folded; empty if missing."""
    base = (value or "").split(";")[0].strip().lower()
    return {"image/jpg": "image/jpeg", "application/dicom+octet-stream": "application/dicom"}.get(
        base, base
    )


@dataclass(frozen=True)
class ScaledScan:
    """A scan decoded at 1/`factor` of each side (the codec's DCT scaling), and its full size."""

    image: np.ndarray
    factor: int
    width: int
    height: int


def decode_scan(
    data: bytes,
    content_type: str | None,
    scan_id: str = "?",
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> np.ndarray:
    """The scan as uint8 BGR HxWx3; BadScanError names the scan, the problem and the fix."""
    return decode_scan_scaled(data, content_type, scan_id, limits).image


def decode_scan_scaled(
    data: bytes,
    content_type: str | None,
    scan_id: str = "?",
    limits: DecodeLimits = DEFAULT_LIMITS,
    *,
    min_side: int | None = None,
) -> ScaledScan:
    """`decode_scan`, straight to at least `min_side` px where the codec allows (JPEG).

    shared.scan_decode's rule, the one the edge uses: the same `min_side` gives the same pixels.
    """
    kind = normalise_content_type(content_type)
    if kind not in CONTENT_TYPES:
        raise BadScanError(
            f"scan {scan_id}: content type {content_type!r} is not supported; "
            f"send one of {', '.join(CONTENT_TYPES)}"
        )
    if not data:
        raise BadScanError(f"scan {scan_id}: the request body is empty; send the image bytes")
    if len(data) > MAX_BYTES:
        raise BadScanError(
            f"scan {scan_id}: {len(data)} bytes is more than the {MAX_BYTES} byte limit; "
            "send the scan at its native resolution without padding"
        )
    try:
        image, header = decode(data, content_type=kind, limits=limits, min_side=min_side)
    except ScanDecodeError as exc:
        if exc.code == "not_an_image":
            raise _mismatch(scan_id, kind) from None
        raise BadScanError(f"scan {scan_id}: {exc}") from None
    if header.fmt != _FORMAT_OF[kind]:
        raise _mismatch(scan_id, kind)
    if min(header.height, header.width) < MIN_SIDE:  # the scan's size, not the reduced decode's
        raise BadScanError(
            f"scan {scan_id}: image is {header.width}x{header.height} pixels, smaller than "
            f"{MIN_SIDE}x{MIN_SIDE}; send the full-resolution scan"
        )
    return ScaledScan(image, reduction_for(header, min_side), header.width, header.height)


def _mismatch(scan_id: str, kind: str) -> BadScanError:
    return BadScanError(
        f"scan {scan_id}: the body is not a readable {kind} image; "
        "check the Content-Type matches the bytes"
    )
