"""A corpus of scan files in every variant the decoders must agree on, with expected pixels.

Built from one small synthetic fundus image; each case says what the decoded BGR image must be
(exactly for lossless encodings, approximately for lossy ones), so a shared decoder that is
wrong the same way on both tiers still fails.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from sim.fundus.dicom import to_dicom_bytes
from sim.fundus.generator import generate_sample

DICOM = "application/dicom"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    content_type: str
    expected_bgr: np.ndarray
    tolerance: float = 0.0  # mean absolute error allowed against expected_bgr (lossy codecs)


def fundus_bgr(size: int = 96) -> np.ndarray:
    return generate_sample(5, 2, size=size, defect_rate=0.0).image_bgr


def scaled(values: np.ndarray, bits: int) -> np.ndarray:
    """The documented 16-bit rule: stored range to 0..255, rounded to nearest."""
    top = (1 << bits) - 1
    return ((values.astype(np.int64) * 255 + top // 2) // top).astype(np.uint8)


def grey_bgr(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def dicom(pixels: np.ndarray, syntax: Any = ExplicitVRLittleEndian, **tags: Any) -> bytes:
    """A minimal OP dataset around `pixels` (HxW grey or HxWx3 RGB); `tags` override."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(pixels.sum())])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality = "OP"
    frames = pixels.shape[0] if tags.pop("multiframe", False) else 1
    shape = pixels.shape[1:] if frames > 1 else pixels.shape
    ds.Rows, ds.Columns = shape[:2]
    ds.SamplesPerPixel = 3 if len(shape) == 3 else 1
    ds.PhotometricInterpretation = "RGB" if ds.SamplesPerPixel == 3 else "MONOCHROME2"
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    for kw, value in tags.items():
        setattr(ds, kw, value)
    if syntax == RLELossless:
        ds.compress(RLELossless, pixels, encoding_plugin="pydicom")
    else:
        ds.PixelData = pixels.tobytes()
        ds.file_meta.TransferSyntaxUID = syntax
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _palette_case(bgr: np.ndarray) -> Case:
    rng = np.random.default_rng(3)
    lut = rng.integers(0, 65536, size=(256, 3), dtype=np.uint16)  # 16-bit entries
    index = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    desc = [256, 0, 16]
    data = dicom(
        index,
        PhotometricInterpretation="PALETTE COLOR",
        RedPaletteColorLookupTableDescriptor=desc,
        GreenPaletteColorLookupTableDescriptor=desc,
        BluePaletteColorLookupTableDescriptor=desc,
        RedPaletteColorLookupTableData=lut[:, 0].tobytes(),
        GreenPaletteColorLookupTableData=lut[:, 1].tobytes(),
        BluePaletteColorLookupTableData=lut[:, 2].tobytes(),
    )
    rgb = scaled(lut[index], 16)
    return Case("dicom-palette-16bit-lut", data, DICOM, rgb[:, :, ::-1])


def _encoded(bgr: np.ndarray, ext: str, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, bgr, list(params))
    assert ok
    return buf.tobytes()


def corpus(size: int = 96) -> list[Case]:
    """Every variant, each with its expected BGR pixels."""
    sample = generate_sample(5, 2, size=size, defect_rate=0.0)
    bgr = sample.image_bgr
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    grey8 = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    grey12 = grey8.astype(np.uint16) * 16 + 7  # 12 bits stored in 16 allocated
    rgb16 = rgb.astype(np.uint16) * 257 + 3
    cases = [
        Case(f"dicom-{syntax}", to_dicom_bytes(sample, syntax=syntax), DICOM, bgr)
        for syntax in ("explicit", "jpeg2000", "rle", "deflate")
    ]
    cases += [
        Case("dicom-jpeg-baseline", to_dicom_bytes(sample, syntax="jpeg-baseline"), DICOM, bgr, 4),
        Case("dicom-implicit-rgb8", dicom(rgb, ImplicitVRLittleEndian), DICOM, bgr),
        Case("dicom-mono2-8bit", dicom(grey8), DICOM, grey_bgr(grey8)),
        Case(
            "dicom-mono2-12bit",
            dicom(grey12, BitsStored=12, HighBit=11),
            DICOM,
            grey_bgr(scaled(grey12, 12)),
        ),
        Case("dicom-rgb-16bit", dicom(rgb16), DICOM, scaled(rgb16, 16)[:, :, ::-1]),
        Case(
            "dicom-mono1-8bit",
            dicom(grey8, PhotometricInterpretation="MONOCHROME1"),
            DICOM,
            grey_bgr(255 - grey8),
        ),
        Case(
            "dicom-mono1-12bit-deflate",
            dicom(
                grey12,
                DeflatedExplicitVRLittleEndian,
                BitsStored=12,
                HighBit=11,
                PhotometricInterpretation="MONOCHROME1",
            ),
            DICOM,
            grey_bgr(255 - scaled(grey12, 12)),
        ),
        Case(
            "dicom-signed-16bit",
            dicom(grey12.astype(np.int16) - 2048, BitsStored=12, HighBit=11),
            DICOM,
            grey_bgr(scaled(grey12, 12)),
        ),
        Case(
            "dicom-mono2-rle-16bit", dicom(grey12, RLELossless), DICOM, grey_bgr(scaled(grey12, 16))
        ),
        Case(
            "dicom-multiframe-first-used",
            dicom(np.stack([rgb, rgb[::-1]]), multiframe=True),
            DICOM,
            bgr,
        ),
        _palette_case(bgr),
        Case("png-rgb8", _encoded(bgr, ".png"), "image/png", bgr),
        Case("png-grey8", _encoded(grey8, ".png"), "image/png", grey_bgr(grey8)),
        Case(
            "png-rgb16",
            _encoded(rgb16[:, :, ::-1], ".png"),
            "image/png",
            scaled(rgb16, 16)[:, :, ::-1],
        ),
        Case(
            "png-rgba",
            _encoded(np.dstack([bgr, np.full(grey8.shape, 9, np.uint8)]), ".png"),
            "image/png",
            bgr,
        ),
        Case(
            "jpeg-colour", _encoded(bgr, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 95), "image/jpeg", bgr, 4
        ),
        Case("jpeg-grey", _encoded(grey8, ".jpg"), "image/jpeg", grey_bgr(grey8), 4),
    ]
    return cases
