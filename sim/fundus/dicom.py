"""DICOM files per the Ophthalmic Photography 8 Bit Image IOD.

Transfer syntaxes: uncompressed explicit VR little endian (RGB); JPEG baseline, encoded with
Pillow as 4:2:2 subsampled YCbCr, hence Photometric Interpretation YBR_FULL_422 as PS3.5 8.2.1
requires; lossless JPEG 2000 (Pillow/OpenJPEG, no colour transform, so RGB); RLE lossless
(pydicom's own encoder); and deflated explicit VR (the whole dataset zlib-compressed), as
cameras send them. Tags can be left out on purpose, as real devices do, to test the checks.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom import dcmwrite
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)

from shared.errors import EdgewardError
from sim.fundus.cameras import camera_profile
from sim.fundus.generator import GENERATOR_VERSION, FundusSample

OP_8BIT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.5.1"  # PS3.4 B.5
SYNTAXES = {
    "explicit": ExplicitVRLittleEndian,
    "jpeg-baseline": JPEGBaseline8Bit,
    "jpeg2000": JPEG2000Lossless,
    "rle": RLELossless,
    "deflate": DeflatedExplicitVRLittleEndian,
}
_NEVER_OMIT = {"PixelData"}  # a file without pixels is not a scan at all
_EPOCH = datetime(2026, 1, 5, 8, 0, 0)


def check_keywords(keywords: Collection[str], omitting: bool = False) -> None:
    """Refuse misspelt DICOM keywords before any file is written."""
    for kw in keywords:
        if tag_for_keyword(kw) is None:
            raise EdgewardError(
                f"DICOM keyword {kw!r} is unknown; spell it as in PS3.6, e.g. ImageLaterality"
            )
    if omitting and (bad := sorted(_NEVER_OMIT & set(keywords))):
        raise EdgewardError(f"DICOM tag {bad[0]} cannot be left out: the file would hold no image")


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def default_patient_id(sample: FundusSample) -> str:
    return f"SIM{sample.seed}-{sample.index:06d}"


def build_dataset(
    sample: FundusSample,
    syntax: str = "explicit",
    omit: Collection[str] = (),
    patient_id: str | None = None,
    **tags: Any,
) -> FileDataset:
    """The DICOM dataset of one sample; `tags` (DICOM keywords) override the defaults."""
    if syntax not in SYNTAXES:
        raise EdgewardError(
            f"DICOM syntax {syntax!r} is not supported; use one of {', '.join(SYNTAXES)}"
        )
    check_keywords(omit, omitting=True)
    check_keywords(tags)
    pid = patient_id or default_patient_id(sample)
    lab = sample.labels
    cam = camera_profile(lab.camera)
    key = [str(sample.seed), str(sample.index), pid]
    when = _EPOCH + timedelta(days=sample.seed % 997, minutes=7 * sample.index)
    rows, cols = sample.image_bgr.shape[:2]
    rgb = np.ascontiguousarray(sample.image_bgr[..., ::-1])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(OP_8BIT_SOP_CLASS)
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[*key, "instance"])
    meta.TransferSyntaxUID = UID(SYNTAXES[syntax])
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    # SOP common, patient, general study, series and equipment modules
    ds.SOPClassUID = OP_8BIT_SOP_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = f"SIM^{pid}"
    ds.PatientID = pid
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[*key, "study"])
    ds.StudyDate = when.strftime("%Y%m%d")
    ds.StudyTime = when.strftime("%H%M%S")
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.Modality = "OP"
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[*key, "series"])
    ds.SeriesNumber = 1
    ds.Manufacturer = cam.manufacturer
    ds.ManufacturerModelName = cam.model
    ds.DeviceSerialNumber = f"SIM-{cam.name}"
    ds.SoftwareVersions = f"edgeward-fundus-twin {GENERATOR_VERSION}"
    # Ophthalmic photography image module
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.InstanceNumber = sample.index + 1
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S.000000")
    ds.BurnedInAnnotation = "NO"
    ds.ImageLaterality = lab.laterality
    ds.AnatomicRegionSequence = [_code("5665001", "SCT", "Retina")]
    ds.AcquisitionDeviceTypeCodeSequence = [_code("409899009", "SCT", "Fundus camera")]
    ds.IlluminationTypeCodeSequence = []
    ds.LightPathFilterTypeStackCodeSequence = []
    ds.LensesCodeSequence = []
    ds.DetectorType = "CCD"
    ds.PatientEyeMovementCommanded = "NO"
    ds.HorizontalFieldOfView = cam.field_deg
    ds.EmmetropicMagnification = None
    ds.IntraOcularPressure = None
    ds.PupilDilated = "YES"
    # Image pixel module
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    _set_pixels(ds, rgb, syntax)
    for kw, value in tags.items():
        setattr(ds, kw, value)
    for kw in omit:
        if kw in ds:
            delattr(ds, kw)
        elif kw in ds.file_meta:
            delattr(ds.file_meta, kw)
    return ds


def _set_pixels(ds: FileDataset, rgb: np.ndarray, syntax: str) -> None:
    ds.PhotometricInterpretation = "RGB"
    ds.LossyImageCompression = "00"
    if syntax in ("explicit", "deflate"):  # deflate compresses the whole file when written
        ds.PixelData = rgb.tobytes()
    elif syntax == "rle":
        ds.compress(RLELossless, rgb, encoding_plugin="pydicom")
    elif syntax == "jpeg2000":
        buf = io.BytesIO()
        # A raw codestream (no JP2 boxes) and no colour transform: lossless RGB as PS3.5 A.4.4.
        Image.fromarray(rgb, "RGB").save(buf, format="JPEG2000", no_jp2=True, mct=0)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR = "OB"
    else:
        buf = io.BytesIO()
        # subsampling=1 is 4:2:2; Pillow writes YCbCr JFIF, i.e. DICOM YBR_FULL_422.
        Image.fromarray(rgb, "RGB").save(buf, format="JPEG", quality=95, subsampling=1)
        jpeg = buf.getvalue()
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = round(rgb.nbytes / len(jpeg), 2)
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate([jpeg])
        ds["PixelData"].VR = "OB"


def write_dicom(
    path: Path | str,
    sample: FundusSample,
    syntax: str = "explicit",
    omit: Collection[str] = (),
    patient_id: str | None = None,
    **tags: Any,
) -> None:
    """Write one sample as an OP 8-bit DICOM file (Part 10, with preamble and file meta)."""
    ds = build_dataset(sample, syntax, omit, patient_id, **tags)
    dcmwrite(path, ds, enforce_file_format=not _meta_omitted(omit))


def to_dicom_bytes(
    sample: FundusSample,
    syntax: str = "explicit",
    omit: Collection[str] = (),
    patient_id: str | None = None,
    **tags: Any,
) -> bytes:
    """The same file as write_dicom, in memory (for uploads in tests and the demo)."""
    buf = io.BytesIO()
    write_dicom(buf, sample, syntax, omit, patient_id, **tags)  # type: ignore[arg-type]
    return buf.getvalue()


def _meta_omitted(omit: Collection[str]) -> bool:
    return any(kw.startswith("MediaStorage") or kw == "TransferSyntaxUID" for kw in omit)
