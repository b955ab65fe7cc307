"""Scan bytes -> uint8 BGR pixels: the one decoder the clinic gateway and the cloud share.

Both tiers must see identical pixels for the same file, or the edge triage and the cloud grader
judge different images. So the format sniffing, the 16-bit scaling, MONOCHROME1 and palette
handling, the accepted modality and every size limit live here, once.

Order, for every format: sniff the magic bytes, read the header (a few bytes; DICOM inflated
only within a byte budget), check the size limits from the header, and only then decode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from shared import scan_dicom
from shared.scan_dicom import (
    DEFAULT_LIMITS,
    DecodeLimits,
    ScanDecodeError,
    check_modality,
    check_transfer_syntax,
    to_uint8,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FORMATS",
    "DecodeLimits",
    "ScanDecodeError",
    "ScanHeader",
    "check_limits",
    "check_modality",
    "check_transfer_syntax",
    "decode",
    "decode_pixels",
    "read_header",
    "reduction_for",
    "sniff_format",
]

FORMATS = ("dicom", "jpeg", "png", "tiff")
_DICOM_TYPES = {"application/dicom", "application/dicom+binary", "application/dicom+octet-stream"}
_DICOM_SUFFIXES = (".dcm", ".dicom")


@dataclass
class ScanHeader:
    """What the file says about its pixels, read before decoding them."""

    fmt: str
    width: int
    height: int
    channels: int
    bits: int = 8
    dataset: Any = None  # the pydicom Dataset for DICOM files
    end_ok: bool = True  # the file ends where its format says it must (not truncated)
    frames: int = 1
    notes: dict[str, str] = field(default_factory=dict)


def sniff_format(data: bytes, filename: str | None, content_type: str | None) -> str | None:
    """The format from magic bytes; the name or content type only for preamble-less DICOM."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    hinted = (content_type or "").split(";")[0].strip().lower() in _DICOM_TYPES
    hinted = hinted or (filename or "").lower().endswith(_DICOM_SUFFIXES)
    # Old DICOM files may lack the 128-byte preamble; only try that when told it is DICOM.
    return "dicom" if hinted else None


def read_header(data: bytes, fmt: str, limits: DecodeLimits = DEFAULT_LIMITS) -> ScanHeader:
    """Dimensions and channel count from the file header; ScanDecodeError if unreadable."""
    if fmt == "dicom":
        return _dicom_header(data, limits)
    reader = {"jpeg": _jpeg_header, "png": _png_header, "tiff": _tiff_header}.get(fmt)
    if reader is None:
        raise ScanDecodeError(
            "not_an_image", f"format {fmt!r} is not one of {', '.join(FORMATS)}; send a scan"
        )
    try:
        return reader(data)
    except (struct.error, IndexError, ValueError) as exc:
        raise ScanDecodeError(
            "truncated",
            f"the {fmt.upper()} header is damaged or cut short ({exc}); "
            "send the file again from the camera",
        ) from exc


def check_limits(header: ScanHeader, limits: DecodeLimits = DEFAULT_LIMITS) -> None:
    """Refuse, from the header alone, images whose decoding would cost too much memory."""
    w, h, frames = header.width, header.height, header.frames
    if w <= 0 or h <= 0 or frames <= 0:
        raise ScanDecodeError(
            "no_pixels",
            f"the {header.fmt.upper()} header says the image is {w}x{h} px"
            f"{f' x {frames} frames' if frames != 1 else ''}; send the scan again",
        )
    pixels = w * h * frames
    if pixels > limits.max_pixels:
        raise ScanDecodeError(
            "too_many_pixels",
            f"the header says {w}x{h} px{f' x {frames} frames' if frames > 1 else ''} "
            f"({pixels / 1e6:.0f} megapixels), over the {limits.max_pixels / 1e6:.0f} MP "
            "limit (max_pixels); refused before decoding as a possible decompression "
            "bomb — send the camera's normal export",
        )
    size = pixels * max(header.channels, 1) * max((header.bits + 7) // 8, 1)
    if size > limits.max_decoded_bytes:
        raise ScanDecodeError(
            "too_many_bytes",
            f"the header says {w}x{h} px x {header.channels} samples x {header.bits} bits"
            f"{f' x {frames} frames' if frames > 1 else ''} = {size / 2**20:.0f} MiB decoded, "
            f"over the {limits.max_decoded_bytes / 2**20:.0f} MiB limit (max_decoded_bytes); "
            "refused before decoding — send one 8-bit frame at the camera's normal size",
        )


# cv2's DCT-scaled JPEG decodes: 1/2, 1/4, 1/8 of each side, rounded up.
_REDUCED_JPEG = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def reduction_for(header: ScanHeader, min_side: int | None) -> int:
    """The codec's scale-down factor (1, 2, 4 or 8) for decoding straight to `min_side`.

    The largest factor whose output keeps the longest side at `min_side` px or more, for the
    formats whose codec can skip the detail (JPEG, by DCT scaling); 1 otherwise, or when
    `min_side` is None. Callers that analyse at a fixed size (the clinic's 512 px gate) pass it
    so a 2048 px JPEG is never decoded whole.
    """
    if min_side is None:
        return 1
    if header.fmt == "dicom":
        if header.dataset is None or scan_dicom.scalable_frame(header.dataset) is None:
            return 1
    elif header.fmt != "jpeg":
        return 1
    longest = max(header.width, header.height)
    factors = [f for f in sorted(_REDUCED_JPEG, reverse=True) if longest // f >= min_side]
    return factors[0] if factors else 1


def decode_pixels(
    data: bytes,
    header: ScanHeader,
    limits: DecodeLimits = DEFAULT_LIMITS,
    *,
    min_side: int | None = None,
) -> np.ndarray:
    """Pixels as uint8 BGR HxWx3 (grey replicated, alpha dropped); limits checked first.

    With `min_side`, a codec that can decode at reduced size does (see `reduction_for`): the
    result is then ceil(w/f) x ceil(h/f) for factor f, the same pixels on every tier that asks
    for the same `min_side`. The caller reads f back as `reduction_for(header, min_side)`.
    """
    check_limits(header, limits)
    reduction = reduction_for(header, min_side)
    if header.fmt == "dicom" and reduction > 1:
        image = _dicom_reduced(header, reduction)
    elif header.fmt == "dicom":
        scan_dicom.check_fragment_size(header.dataset, header.height, header.width)
        image = scan_dicom.pixels(header.dataset)
        if image.ndim == 3 and image.shape[2] == 3:
            # RGB -> BGR like cv2. cvtColor, not a reversed view made contiguous: the same
            # bytes, ~10x faster on a 2048 px scan (numpy copies negative strides slowly).
            image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    else:
        image = _raster_pixels(data, header, reduction)
    return _as_bgr(image, header)


def decode(
    data: bytes,
    filename: str | None = None,
    content_type: str | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
    *,
    min_side: int | None = None,
) -> tuple[np.ndarray, ScanHeader]:
    """Sniff, read the header, check modality/syntax/limits, decode: the whole rule in one call.

    `min_side`: decode straight to at least this longest side where the codec allows (JPEG).
    """
    fmt = sniff_format(data, filename, content_type)
    if fmt is None:
        raise ScanDecodeError(
            "not_an_image",
            f"not an image format this reads ({', '.join(FORMATS).upper()}); the data starts "
            f"with {data[:8]!r} — send the scan as exported by the camera",
        )
    header = read_header(data, fmt, limits)
    if header.dataset is not None:
        check_modality(header.dataset)
        check_transfer_syntax(header.dataset)
    return decode_pixels(data, header, limits, min_side=min_side), header


# ---- headers ----


def _dicom_header(data: bytes, limits: DecodeLimits) -> ScanHeader:
    ds = scan_dicom.read_dataset(data, limits)
    rows, cols, samples, bits, frames = scan_dicom.dimensions(ds)
    header = ScanHeader("dicom", cols, rows, samples, bits, dataset=ds, frames=frames)
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "PALETTE COLOR":
        header.channels = 3  # indices into an RGB palette
    header.notes["frames"] = str(frames)
    return header


def _jpeg_header(data: bytes) -> ScanHeader:
    pos = 2
    header: ScanHeader | None = None
    while pos < len(data) - 1:
        if data[pos] != 0xFF:
            raise ValueError(f"expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers carry no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            bits, height, width, channels = struct.unpack(">BHHB", data[pos + 4 : pos + 10])
            header = ScanHeader("jpeg", width, height, channels, bits)
        if marker == 0xDA:  # start of scan: entropy-coded data follows until EOI
            if header is None:
                raise ValueError("no frame header (SOF) before the scan data")
            # FF D9 cannot occur inside entropy-coded data, so its absence means truncation.
            header.end_ok = data.rfind(b"\xff\xd9") > pos
            return header
        pos += 2 + length
    raise ValueError("the file ends before the image data starts")


def _png_header(data: bytes) -> ScanHeader:
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ValueError("the first chunk is not IHDR")
    width, height, bits, colour = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour)
    if channels is None:
        raise ValueError(f"unknown PNG colour type {colour}")
    end_ok = data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return ScanHeader("png", width, height, channels, bits, end_ok=end_ok)


def _tiff_header(data: bytes) -> ScanHeader:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    tags: dict[int, int] = {}
    for i in range(count):
        entry = data[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        tag, kind, n = struct.unpack(order + "HHI", entry[:8])
        if n >= 1 and kind in (3, 4):  # SHORT or LONG: first value sits in the entry
            fmt = order + ("H" if kind == 3 else "I")
            tags[tag] = struct.unpack(fmt, entry[8:10] if kind == 3 else entry[8:12])[0]
    if 256 not in tags or 257 not in tags:
        raise ValueError("no ImageWidth/ImageLength tags in the first directory")
    return ScanHeader("tiff", tags[256], tags[257], tags.get(277, 1), tags.get(258, 8))


# ---- pixels ----


def _raster_pixels(data: bytes, header: ScanHeader, reduction: int = 1) -> np.ndarray:
    buf = np.frombuffer(data, dtype=np.uint8)
    # JPEG is 8-bit and may be CMYK, which IMREAD_COLOR converts; PNG/TIFF keep their depth so
    # 16-bit samples get the same scaling as 16-bit DICOM. Stored orientation, not EXIF's: the
    # metadata-free copy the cloud grades has no EXIF, and both tiers must see the same pixels.
    flags = cv2.IMREAD_COLOR if header.fmt == "jpeg" else cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
    if reduction > 1:  # only JPEG data gets here with a reduction (reduction_for)
        flags = _REDUCED_JPEG[reduction]
    try:
        image = cv2.imdecode(buf, flags | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:
        image = None
        detail = f" ({str(exc).strip().splitlines()[-1]})"
    else:
        detail = ""
    if image is None or image.size == 0:
        raise ScanDecodeError(
            "undecodable",
            f"the {header.fmt.upper()} data cannot be decoded (damaged or cut short){detail}; "
            "send the file again from the camera",
        )
    image = np.asarray(image)
    bits = image.dtype.itemsize * 8
    return to_uint8(image, bits)


def _dicom_reduced(header: ScanHeader, reduction: int) -> np.ndarray:
    """An embedded JPEG or JPEG 2000 decoded at 1/reduction per side, BGR or grey."""
    ds = header.dataset
    scan_dicom.check_fragment_size(ds, header.height, header.width)
    found = scan_dicom.scalable_frame(ds)
    if found is None:  # reduction_for checked this; only a changed dataset gets here
        raise ScanDecodeError("undecodable", "the DICOM's embedded image changed while decoding")
    kind, frame = found
    if kind == "jpeg":
        return _raster_pixels(frame, ScanHeader("jpeg", header.width, header.height, 3), reduction)
    image = scan_dicom.reduced_j2k(frame, reduction)
    if image is None:
        # Too few resolution levels in the codestream: decode whole, then the same size by
        # area averaging, so the shape is what reduction_for promised on every tier.
        full = scan_dicom.pixels(ds)
        size = (-(-header.width // reduction), -(-header.height // reduction))
        image = cv2.resize(full, size, interpolation=cv2.INTER_AREA)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return image


def _as_bgr(image: np.ndarray, header: ScanHeader) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]  # alpha carries nothing for grading
    if image.ndim != 3 or image.shape[2] != 3:
        raise ScanDecodeError(
            "channels",
            f"the {header.fmt.upper()} pixels have shape {image.shape}, expected a grey or "
            "colour image; send a colour fundus photograph",
        )
    return np.ascontiguousarray(image)
