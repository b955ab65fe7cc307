"""Turn uploaded scan bytes (PNG, JPEG or DICOM) into a BGR image, or say clearly why not."""

from __future__ import annotations

import io

import cv2
import numpy as np

from shared.errors import EdgewardError

MAX_BYTES = 64 * 1024 * 1024  # a 4k x 4k 16-bit DICOM is ~100 MB uncompressed; fundus are smaller
MIN_SIDE = 64
CONTENT_TYPES = ("image/png", "image/jpeg", "application/dicom")


class BadScanError(EdgewardError):
    """The uploaded bytes are not a scan the grader can read; the message says what to send."""


def normalise_content_type(value: str | None) -> str:
    """`image/jpeg; charset=...` -> `image/jpeg`; aliases folded; empty if missing."""
    base = (value or "").split(";")[0].strip().lower()
    return {"image/jpg": "image/jpeg", "application/dicom+octet-stream": "application/dicom"}.get(
        base, base
    )


def decode_scan(data: bytes, content_type: str | None, scan_id: str = "?") -> np.ndarray:
    """The scan as uint8 BGR HxWx3; BadScanError names the scan, the problem and the fix."""
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
    image = _decode_dicom(data, scan_id) if kind == "application/dicom" else _decode_raster(data)
    if image is None:
        raise BadScanError(
            f"scan {scan_id}: the body is not a readable {kind} image; "
            "check the Content-Type matches the bytes"
        )
    if min(image.shape[:2]) < MIN_SIDE:
        raise BadScanError(
            f"scan {scan_id}: image is {image.shape[1]}x{image.shape[0]} pixels, smaller than "
            f"{MIN_SIDE}x{MIN_SIDE}; send the full-resolution scan"
        )
    return image


def _decode_raster(data: bytes) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.ascontiguousarray(image)


def _decode_dicom(data: bytes, scan_id: str) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise BadScanError(
            f"scan {scan_id}: not a valid DICOM file ({exc}); send a DICOM Part 10 file"
        ) from None
    modality = str(ds.get("Modality", "OP") or "OP")
    if modality not in ("OP", "XC"):
        raise BadScanError(
            f"scan {scan_id}: DICOM Modality is {modality!r}, expected 'OP' (ophthalmic "
            "photography); send a fundus image"
        )
    if "PixelData" not in ds:
        raise BadScanError(f"scan {scan_id}: DICOM file has no pixel data; send the image object")
    try:
        pixels = np.asarray(ds.pixel_array)  # pydicom 3 converts YBR to RGB by default
    except Exception as exc:  # decoders raise many types; all mean the same thing here
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise BadScanError(
            f"scan {scan_id}: cannot decode DICOM pixel data (transfer syntax {syntax}): {exc}; "
            "send uncompressed or JPEG baseline"
        ) from None
    if pixels.ndim == 4:  # multi-frame: grade the first frame
        pixels = pixels[0]
    if pixels.dtype != np.uint8:
        lo, hi = float(pixels.min()), float(pixels.max())
        pixels = ((pixels - lo) * (255.0 / max(hi - lo, 1.0))).astype(np.uint8)
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return np.ascontiguousarray(pixels[:, :, ::-1])
    raise BadScanError(
        f"scan {scan_id}: DICOM pixel array has shape {pixels.shape}; expected a grey or RGB image"
    )
