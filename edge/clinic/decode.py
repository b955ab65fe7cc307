"""Scan bytes -> pixels: sniff the format, read the header cheaply, then decode.

Headers are parsed by hand (a few bytes each) so image dimensions can be checked against the
decompression-bomb limit before any decoder allocates memory for the pixels.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from shared.verdicts import Verdict

FORMATS = ("dicom", "jpeg", "png", "tiff")
# Decode JPEGs at a reduced scale (DCT scaling, ~2x faster at 2048 px) while the shorter side
# stays at least this large; the models see 224-320 px and the quality checks 512 px.
MIN_WORKING_SIDE = 768

_DICOM_TYPES = {"application/dicom", "application/dicom+binary"}
_EXTENSIONS = {
    ".dcm": "dicom",
    ".dicom": "dicom",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
}


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


@dataclass
class ImageHeader:
    """What the file says about its pixels, read before decoding them."""

    fmt: str
    width: int
    height: int
    channels: int
    bits: int = 8
    dataset: Any = None  # the pydicom Dataset for DICOM files
    end_ok: bool = True  # the file ends where its format says it must (not truncated)
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
    if filename:
        suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        hinted = hinted or _EXTENSIONS.get(suffix) == "dicom"
    # Old DICOM files may lack the 128-byte preamble; only try that when told it is DICOM.
    return "dicom" if hinted else None


def read_header(data: bytes, fmt: str) -> ImageHeader:
    """Dimensions and channel count from the file header; InvalidScanError if unreadable."""
    reader = {"jpeg": _jpeg_header, "png": _png_header, "tiff": _tiff_header}.get(fmt)
    if reader is not None:
        try:
            return reader(data)
        except (struct.error, IndexError, ValueError) as exc:
            raise invalid(
                "truncated",
                f"the {fmt.upper()} header is damaged or cut short ({exc}); "
                "send the file again from the camera",
            ) from exc
    return _dicom_header(data)


def _jpeg_header(data: bytes) -> ImageHeader:
    pos = 2
    header: ImageHeader | None = None
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
            header = ImageHeader("jpeg", width, height, channels, bits)
        if marker == 0xDA:  # start of scan: entropy-coded data follows until EOI
            if header is None:
                raise ValueError("no frame header (SOF) before the scan data")
            # FF D9 cannot occur inside entropy-coded data, so its absence means truncation.
            header.end_ok = data.rfind(b"\xff\xd9") > pos
            return header
        pos += 2 + length
    raise ValueError("the file ends before the image data starts")


def _png_header(data: bytes) -> ImageHeader:
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ValueError("the first chunk is not IHDR")
    width, height, bits, colour = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour)
    if channels is None:
        raise ValueError(f"unknown PNG colour type {colour}")
    end_ok = data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return ImageHeader("png", width, height, channels, bits, end_ok=end_ok)


def _tiff_header(data: bytes) -> ImageHeader:
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
    return ImageHeader("tiff", tags[256], tags[257], tags.get(277, 1), tags.get(258, 8))


def _dicom_header(data: bytes) -> ImageHeader:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1))
        bits = int(ds.get("BitsAllocated", 8))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        _ = ds.file_meta.TransferSyntaxUID
    except (InvalidDicomError, AttributeError, ValueError, TypeError, EOFError, OSError) as exc:
        raise invalid(
            "undecodable",
            f"not a readable DICOM file ({type(exc).__name__}: {exc}); "
            "export the scan again from the camera",
        ) from exc
    if "PixelData" not in ds:
        raise invalid("no_pixels", "the DICOM file has no image (no Pixel Data element)")
    header = ImageHeader("dicom", cols, rows, samples, bits, dataset=ds)
    header.notes["frames"] = str(frames)
    return header


def decode_pixels(data: bytes, header: ImageHeader) -> np.ndarray:
    """Pixels as uint8 BGR (HxWx3) or grey (HxW); InvalidScanError if the decoder fails."""
    if header.fmt == "dicom":
        return _dicom_pixels(header)
    buf = np.frombuffer(data, dtype=np.uint8)
    flags = cv2.IMREAD_COLOR if header.channels >= 3 else cv2.IMREAD_GRAYSCALE
    if header.fmt == "jpeg":
        flags = _reduced_flag(min(header.width, header.height), header.channels >= 3)
    # Stored orientation, not EXIF's: the metadata-free copy the cloud grades has no EXIF, and
    # both tiers must see the same pixels.
    image = cv2.imdecode(buf, flags | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.size == 0:
        raise invalid(
            "undecodable",
            f"the {header.fmt.upper()} data cannot be decoded (damaged or cut short); "
            "send the file again from the camera",
        )
    return np.asarray(image)


def _reduced_flag(short_side: int, colour: bool) -> int:
    colour_flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2}
    grey_flags = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2}
    colour_flags |= {4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
    grey_flags |= {4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
    factor = 1
    while factor < 8 and short_side // (factor * 2) >= MIN_WORKING_SIDE:
        factor *= 2
    return (colour_flags if colour else grey_flags)[factor]


def _dicom_pixels(header: ImageHeader) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    ds = header.dataset
    try:
        pixels = np.asarray(ds.pixel_array)
        if int(header.notes.get("frames", "1")) > 1:
            pixels = pixels[0]
        photometric = str(ds.get("PhotometricInterpretation", "")).upper()
        # pydicom 3 already returns RGB for YCbCr data (JPEG baseline's YBR_FULL_422).
        if photometric == "PALETTE COLOR":
            pixels = apply_color_lut(pixels, ds)
    except Exception as exc:  # pydicom/pillow raise many types for damaged pixel data
        raise invalid(
            "undecodable",
            f"the DICOM pixel data cannot be decoded ({type(exc).__name__}: {exc}); "
            "export the scan again from the camera",
        ) from exc
    if pixels.dtype != np.uint8:
        # 10-16 bit sensors: scale the stored range to 8 bits as the models were trained on.
        top = float(2 ** int(ds.get("BitsStored", header.bits)) - 1)
        pixels = np.clip(pixels.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
    if photometric == "MONOCHROME1":
        pixels = 255 - pixels
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return np.ascontiguousarray(pixels[:, :, ::-1])  # RGB -> BGR like cv2
    return np.ascontiguousarray(pixels)


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
