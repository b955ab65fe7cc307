"""Checks on a scan before and after decoding; each failure is a Problem a person can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.clinic.decode import ImageHeader, as_invalid, invalid
from shared.config.clinic import ClinicLimits
from shared.scan_decode import (
    DecodeLimits,
    ScanDecodeError,
    check_limits,
    check_modality,
    check_transfer_syntax,
)
from shared.verdicts import Verdict

_LATERALITY = {"L": "L", "LEFT": "L", "OS": "L", "R": "R", "RIGHT": "R", "OD": "R"}


@dataclass
class ScanIdentity:
    """Who and which eye, as sent; missing pieces are flagged, not refused."""

    laterality: str | None = None
    patient_id: str | None = None
    flags: list[str] = field(default_factory=list)


def check_upload(data: bytes, limits: ClinicLimits) -> None:
    if not data:
        raise invalid("empty", "the file is empty (0 bytes); send the scan again")
    if len(data) > limits.max_upload_bytes:
        raise invalid(
            "file_too_large",
            f"the file is {len(data) / 1e6:.1f} MB, over the {limits.max_upload_bytes / 1e6:.0f} "
            "MB limit (limits.max_upload_bytes); export the scan at the camera's normal size",
        )


def check_header(header: ImageHeader, limits: ClinicLimits) -> None:
    """Size, channel and completeness checks that need no decoded pixels."""
    w, h = header.width, header.height
    try:  # the same pixel and memory limits the decoder itself enforces (shared rule)
        check_limits(header, DecodeLimits(max_pixels=limits.max_pixels))
    except ScanDecodeError as exc:
        raise as_invalid(exc) from exc
    if header.channels in (1, 2):
        raise invalid(
            "channels",
            f"the image is greyscale ({header.channels} channel{'s' * (header.channels > 1)}), "
            "expected a colour fundus photograph (3 channels); send the colour image",
            Verdict.RETAKE,
        )
    if header.channels not in (3, 4):
        raise invalid(
            "channels",
            f"the image has {header.channels} channels, expected 3 (colour); "
            "send a colour fundus photograph",
        )
    if min(w, h) < limits.min_side_px:
        raise invalid(
            "too_small",
            f"the image is only {w}x{h} px, below the {limits.min_side_px} px minimum side "
            "(limits.min_side_px); send the camera's full-resolution image",
            Verdict.RETAKE,
        )
    if not header.end_ok:
        raise invalid(
            "truncated",
            f"the {header.fmt.upper()} file is cut short (no end-of-image marker); "
            "it was probably still being written or copied — send it again",
        )


def check_dicom(ds: Any) -> None:
    """Modality and transfer syntax: is this an ophthalmic photograph we can decode here?"""
    try:
        check_modality(ds)
        check_transfer_syntax(ds)
    except ScanDecodeError as exc:
        raise as_invalid(exc) from exc


def identity(header: ImageHeader, metadata: dict[str, str]) -> ScanIdentity:
    """Laterality and patient id from the DICOM tags, else from upload metadata; flag gaps."""
    found = ScanIdentity()
    ds = header.dataset
    laterality = metadata.get("laterality")
    patient = metadata.get("patient_id")
    if ds is not None:
        laterality = str(ds.get("ImageLaterality", "") or ds.get("Laterality", "") or "") or (
            laterality
        )
        patient = str(ds.get("PatientID", "") or "") or patient
        if not ds.get("Modality"):
            found.flags.append("missing_modality")
    if laterality and laterality.strip():
        found.laterality = _LATERALITY.get(laterality.strip().upper())
        if found.laterality is None:
            found.flags.append("unknown_laterality")
    else:
        found.flags.append("missing_laterality")
    if patient and patient.strip():
        found.patient_id = patient.strip()
    else:
        found.flags.append("missing_patient_id")
    if header.frames > 1:
        found.flags.append("multiframe_first_used")
    return found


def check_pixels(image: np.ndarray, header: ImageHeader) -> np.ndarray:
    """The decoded image as HxWx3 uint8 BGR; retake for greyscale pixels in a colour file."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = np.ascontiguousarray(image[:, :, :3])  # alpha carries nothing for grading
    if image.ndim == 2 or image.shape[2] == 1:
        raise invalid(
            "channels",
            "the image is greyscale, expected a colour fundus photograph (3 channels); "
            "send the colour image",
            Verdict.RETAKE,
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise invalid("channels", f"decoded pixels have shape {image.shape}, expected HxWx3")
    return image
