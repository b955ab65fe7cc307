"""A DICOM home for a JPEG, PNG or TIFF scan: a Secondary Capture in a study of its own, so
its SR and PDF have a study to attach to in the PACS.

The study is new (the camera made none) and derived from the scan id, so a rebuilt capture is
the same instance and the PACS dedupes it. The patient is named by the gateway's pseudonym (or
the scan's, when the upload named no patient): the PACS sees no raw id the camera did not put
into DICOM itself.
"""

from __future__ import annotations

import io

import cv2
import highdicom as hd
import numpy as np
import pydicom
from pydicom.uid import generate_uid

from edge.clinic.store import ScanRecord

# DICOM's LO (Patient ID) holds 64 characters; 48 hex digits of the pseudonym stay unique.
PATIENT_ID_CHARS = 50
SERIES_NUMBER = 900  # the captured scan, apart from the report series (901)
# Rows run to the patient's left and columns to the feet, as in a face-on photograph.
ORIENTATION = ("L", "F")


def secondary_capture(record: ScanRecord, data: bytes, patient_ref: str) -> pydicom.Dataset:
    """An SC image of the scan's pixels (8-bit RGB) in a new study named by `patient_ref`."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"scan {record.scan_id}: the image cannot be decoded for a DICOM copy")
    laterality = str(record.outcome.get("laterality") or record.metadata.get("laterality") or "")
    eye = laterality.upper()[:1]
    seed = record.scan_id
    patient = patient_ref[:PATIENT_ID_CHARS]
    return hd.sc.SCImage(
        pixel_array=np.ascontiguousarray(image[..., ::-1]),  # BGR -> RGB
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        study_instance_uid=study_uid_of(seed),
        series_instance_uid=generate_uid(entropy_srcs=[seed, "sc-series"]),
        series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(entropy_srcs=[seed, "sc"]),
        instance_number=1,
        manufacturer="edgeward",
        patient_id=patient,
        patient_name=f"{patient}^",
        laterality=eye if eye in ("R", "L") else None,
        patient_orientation=ORIENTATION,
    )


def dataset_bytes(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def study_uid_of(scan_id: str) -> str:
    """The Study Instance UID the gateway gives a JPEG/PNG/TIFF scan (derived, so stable)."""
    return str(generate_uid(entropy_srcs=[scan_id, "study"]))
