"""DICOM scans -> 8-bit BGR pixels, with every size limit checked before memory is spent.

Read by shared.scan_decode, the one decoder both the clinic gateway and the cloud use. Deflated
files are inflated twice: once counting bytes without keeping them (constant memory), then for
real only when the count fits the budget, so a 0.4 MB deflate bomb never costs a gigabyte.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.errors import EdgewardError

DEFLATED = "1.2.840.10008.1.2.1.99"
UNCOMPRESSED = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    DEFLATED: "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
}
# OP: Ophthalmic Photography IODs. XC: VL Photographic Image, the class older fundus cameras
# export and the gateway's DICOM receiver accepts. Anything else (CT, MR, OT...) is not a fundus.
MODALITIES = ("OP", "XC")
# One codec per lossy syntax on every host: pydicom otherwise picks whichever plugin is
# installed (pylibjpeg on one tier, Pillow on the other) and lossy decoders differ by a few
# grey levels. Pillow is on both tiers; RLE has pydicom's own decoder.
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
_PLUGIN = {
    "1.2.840.10008.1.2.4.50": "pillow",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": "pillow",  # JPEG Extended
    "1.2.840.10008.1.2.4.90": "pillow",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "pillow",  # JPEG 2000
    "1.2.840.10008.1.2.5": "pydicom",  # RLE Lossless
}
_INFLATE_CHUNK = 1 << 20


class ScanDecodeError(EdgewardError):
    """A scan cannot be decoded; `code` is the machine reason, the message says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DecodeLimits:
    """What one scan may cost before anything is inflated or decoded."""

    max_pixels: int = 60_000_000  # rows x cols x frames, as the header states it
    max_decoded_bytes: int = 256 * 1024 * 1024  # rows x cols x samples x frames x bytes/sample
    max_inflated_bytes: int = 160 * 1024 * 1024  # a deflated DICOM once inflated


DEFAULT_LIMITS = DecodeLimits()


def read_dataset(data: bytes, limits: DecodeLimits) -> Any:
    """The pydicom FileDataset; deflated bodies inflated only within limits.max_inflated_bytes."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.filereader import read_dataset as read_elements

    start = 132 if len(data) >= 132 and data[128:132] == b"DICM" else 0
    try:
        fp = io.BytesIO(data)
        fp.seek(start)
        meta = read_elements(fp, False, True, stop_when=lambda tag, vr, length: tag.group != 2)
        body_at = fp.tell()
        syntax = str(meta.get("TransferSyntaxUID", "") or "").strip("\0 ")
        if syntax != DEFLATED:
            return _readable(pydicom.dcmread(io.BytesIO(data), force=True))
        inflated = _inflate(data[body_at:], limits)
        ds = read_elements(io.BytesIO(inflated), False, True)
        return _readable(
            FileDataset(
                "", ds, preamble=data[:128] if start else None, file_meta=FileMetaDataset(meta)
            )
        )
    except ScanDecodeError:
        raise
    except Exception as exc:  # pydicom raises many types for damaged files; one meaning here
        raise ScanDecodeError(
            "undecodable",
            f"not a readable DICOM file ({type(exc).__name__}: {exc}); "
            "export the scan again from the camera",
        ) from exc


def _readable(ds: Any) -> Any:
    """The dataset with every top-level element converted now, unreadable ones removed.

    pydicom converts values on first access, so a bad VR or value would otherwise raise from
    any later `ds.get(...)`, far from this module's error handling. A tag that cannot be read is
    treated as absent, so the checks that need it say so in their own words.
    """
    for dataset in (ds.file_meta, ds) if getattr(ds, "file_meta", None) is not None else (ds,):
        for tag in list(dataset.keys()):
            try:
                dataset[tag]
            except Exception:  # pydicom raises many types for malformed values
                del dataset[tag]
    return ds


def _inflate(body: bytes, limits: DecodeLimits) -> bytes:
    budget = limits.max_inflated_bytes
    counter = zlib.decompressobj(-zlib.MAX_WBITS)
    size, pending = 0, body
    while pending:
        size += len(counter.decompress(pending, _INFLATE_CHUNK))
        if size > budget:
            raise ScanDecodeError(
                "inflated_too_large",
                f"the deflated DICOM inflates to more than {human_bytes(budget)} (the "
                f"max_inflated_bytes limit; {human_bytes(len(body))} compressed): refused "
                "as a possible decompression bomb before keeping any of it — export the scan "
                "uncompressed or as JPEG",
            )
        pending = counter.unconsumed_tail
        if counter.eof:
            break
    return zlib.decompress(body, -zlib.MAX_WBITS, bufsize=max(size, 1))


def human_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def check_modality(ds: Any) -> str:
    """The Modality, upper-cased ('' when missing); ScanDecodeError unless a photograph."""
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality and modality not in MODALITIES:
        raise ScanDecodeError(
            "modality",
            f"DICOM Modality is {modality!r}, expected 'OP' (ophthalmic photography) or 'XC' "
            "(VL photographic); send a fundus image",
        )
    return modality


def transfer_syntax(ds: Any) -> str:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID", "") if meta is not None else ""
    return str(syntax or "1.2.840.10008.1.2").strip("\0 ")


def check_transfer_syntax(ds: Any) -> None:
    """ScanDecodeError unless this host has a decoder for the file's transfer syntax."""
    syntax = transfer_syntax(ds)
    if syntax in UNCOMPRESSED:
        return
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    uid = UID(syntax)
    name = uid.name if uid.is_valid else "unknown"
    try:
        available = get_decoder(uid).is_available
    except (NotImplementedError, ValueError):
        available = False
    if not available:
        raise ScanDecodeError(
            "transfer_syntax",
            f"DICOM transfer syntax {name} ({syntax}) cannot be decoded here; export the scan "
            "uncompressed (Explicit VR Little Endian), as JPEG Baseline, JPEG 2000 or RLE",
        )


def dimensions(ds: Any) -> tuple[int, int, int, int, int]:
    """(rows, cols, samples per pixel, bits allocated, frames) from the header alone."""
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 8) or 8)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, ValueError, TypeError, OverflowError) as exc:
        raise ScanDecodeError(
            "undecodable",
            "not a readable DICOM file: the image size tags (Rows, Columns) are missing or "
            f"malformed ({exc}); "
            "export the scan again from the camera",
        ) from exc
    if "PixelData" not in ds:
        raise ScanDecodeError("no_pixels", "the DICOM file has no image (no Pixel Data element)")
    return rows, cols, samples, bits, frames


def check_fragment_size(ds: Any, rows: int, cols: int) -> None:
    """The first compressed frame must be the size the header states: a small header over a
    huge embedded JPEG/JPEG 2000 would otherwise pass every check and explode in the codec."""
    if transfer_syntax(ds) in UNCOMPRESSED or transfer_syntax(ds) == "1.2.840.10008.1.2.5":
        return  # raw or RLE: the decoder writes exactly rows x cols, nothing to lie about
    from PIL import Image
    from pydicom.encaps import generate_frames

    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        first = next(generate_frames(ds.PixelData, number_of_frames=frames))
        with Image.open(io.BytesIO(first)) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise ScanDecodeError(
            "too_many_pixels",
            f"the DICOM's embedded image is larger than the decoder allows ({exc}); refused "
            "as a possible decompression bomb — send the camera's normal export",
        ) from exc
    except Exception:
        return  # not something Pillow reads (e.g. JPEG lossless): the codec itself decides
    if (width, height) != (cols, rows):
        raise ScanDecodeError(
            "size_mismatch",
            f"the DICOM header says {cols}x{rows} px but its embedded image is "
            f"{width}x{height} px; refused before decoding — export the scan again",
        )


# Embedded codestreams that a codec decodes straight to 1/2, 1/4, 1/8 size, with the colour
# handled as pydicom does: libjpeg turns YCbCr (JFIF) into RGB; OpenJPEG undoes the J2K colour
# transform (ICT/RCT). An RGB-coded baseline JPEG (no transform) is left to pydicom.
_SCALABLE = {
    JPEG_BASELINE: ("jpeg", ("YBR_FULL_422", "YBR_FULL", "MONOCHROME2")),
    JPEG_2000_LOSSLESS: ("j2k", ("RGB", "YBR_ICT", "YBR_RCT", "MONOCHROME2")),
    JPEG_2000: ("j2k", ("RGB", "YBR_ICT", "YBR_RCT", "MONOCHROME2")),
}


def scalable_frame(ds: Any) -> tuple[str, bytes] | None:
    """("jpeg" or "j2k", the embedded codestream) of a single-frame 8-bit file a codec can
    decode at reduced size; None for other syntaxes, several frames, other photometrics."""
    kind, photometrics = _SCALABLE.get(transfer_syntax(ds), ("", ()))
    if not kind or int(ds.get("NumberOfFrames", 1) or 1) != 1:
        return None
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric not in photometrics or int(ds.get("BitsStored", 8) or 8) != 8:
        return None
    from pydicom.encaps import generate_frames

    try:
        return kind, next(generate_frames(ds.PixelData, number_of_frames=1))
    except Exception:  # damaged encapsulation: the full decode reports it properly
        return None


def reduced_j2k(codestream: bytes, factor: int) -> np.ndarray | None:
    """RGB or grey uint8 at 1/factor per side (rounded up), OpenJPEG skipping resolution
    levels; None where the codestream has too few levels or is not 8-bit L/RGB."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(codestream)) as im:
            im.reduce = factor.bit_length() - 1
            im.load()
            if im.mode not in ("L", "RGB"):
                return None
            return np.asarray(im)
    except Exception:  # too few resolution levels, or damaged: the caller decodes it whole
        return None


def pixels(ds: Any) -> np.ndarray:
    """The first frame as uint8, RGB (HxWx3) or grey (HxW), MONOCHROME1 turned positive."""
    from pydicom.pixels import apply_color_lut, pixel_array

    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        plugin = _plugin(transfer_syntax(ds))
        array = np.asarray(pixel_array(ds, index=0 if frames > 1 else None, decoding_plugin=plugin))
        bits = int(ds.get("BitsStored", 0) or 0) or array.dtype.itemsize * 8
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        if photometric == "PALETTE COLOR":
            array = apply_color_lut(array, ds)
            # The palette's entries have their own depth (LUT descriptor), not BitsStored.
            bits, signed = int(ds.RedPaletteColorLookupTableDescriptor[2]), False
    except Exception as exc:  # codecs raise many types for damaged pixel data
        raise ScanDecodeError(
            "undecodable",
            f"the DICOM pixel data cannot be decoded ({type(exc).__name__}: {exc}); "
            "export the scan again from the camera",
        ) from exc
    array = to_uint8(array, bits, signed)
    if photometric == "MONOCHROME1":  # 0 is white in MONOCHROME1
        array = 255 - array
    return array


def _plugin(syntax: str) -> str:
    preferred = _PLUGIN.get(syntax, "")
    if not preferred:
        return ""
    from pydicom.pixels import get_decoder

    return preferred if preferred in get_decoder(syntax).available_plugins else ""


def to_uint8(array: np.ndarray, bits: int, signed: bool = False) -> np.ndarray:
    """Scale the stored range (not the image's min-max) to 0..255, rounding to nearest.

    A fixed scale keeps brightness comparable between scans; a min-max stretch would not.
    """
    if array.dtype == np.uint8 and bits == 8 and not signed:
        return array
    if array.dtype.kind not in "iu":
        raise ScanDecodeError(
            "sample_type",
            f"pixel samples are {array.dtype}, expected integers; "
            "send an 8- or 16-bit integer image",
        )
    bits = min(max(bits, 1), 32)
    top = (1 << bits) - 1
    values = array.astype(np.int64)
    if signed:
        values = values + (1 << (bits - 1))
    values = np.clip(values, 0, top)
    return ((values * 255 + top // 2) // top).astype(np.uint8)
