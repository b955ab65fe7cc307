"""The Encapsulated PDF of one final result: the scan, the Grad-CAM overlay when the cloud sent
one, and the result in plain words; drawn with Pillow (no PDF library on the gateway)."""

from __future__ import annotations

import datetime as dt
import io
import logging
import textwrap

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont, ImageOps
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from edge.clinic.reports.content import FinalResult

ENCAPSULATED_PDF = UID("1.2.840.10008.5.1.4.1.1.104.1")
SERIES_NUMBER = 902
log = logging.getLogger(__name__)
PAGE = (1240, 1754)  # A4 at 150 dpi
COPY_FROM_IMAGE = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _rgb(image: Dataset) -> Image.Image:
    pixels = np.asarray(image.pixel_array)  # pydicom returns YBR (JPEG) already as RGB
    if pixels.dtype != np.uint8:  # 16-bit photography: scale to the page's 8 bits
        top = max(int(pixels.max()), 1)
        pixels = (pixels.astype(np.float64) * 255.0 / top).astype(np.uint8)
    return Image.fromarray(pixels).convert("RGB")


def render_pdf(result: FinalResult, institution: str) -> bytes:
    buf = io.BytesIO()
    render_page(result, institution).save(buf, format="PDF", resolution=150.0)
    return buf.getvalue()


def render_page(result: FinalResult, institution: str) -> Image.Image:
    page = Image.new("RGB", PAGE, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=28)
    small = ImageFont.load_default(size=22)
    y = 60
    eye = {"R": "right eye", "L": "left eye"}.get(result.laterality, "eye not recorded")
    lines = [
        (f"{institution}: diabetic retinopathy screening", font),
        (f"Patient {result.image.get('PatientID', '')}, {eye}", small),
        (f"Study {result.image.get('StudyInstanceUID', '')}", small),
        ("", small),
        (result.plain_words, font),
    ]
    if result.referable_probability is not None:
        lines.append((f"Probability of referable DR: {result.referable_probability:.0%}", small))
    model = f"{result.model_name} {result.model_version}"
    if result.source == "review":
        lines.append((f"Decided by {result.reviewer_role} {result.reviewer}", font))
        lines.append((f"Model shown to the reviewer: {model}", small))
    else:
        lines.append((f"Model: {model} ({result.source})", small))
    lines += [(f"- {w}", small) for r in result.reasons for w in textwrap.wrap(r, 90)]
    for text, face in lines:
        draw.text((80, y), text, fill="black", font=face)
        y += 44
    tiles: list[tuple[str, Image.Image]] = []
    try:
        tiles.append(("Scan", _rgb(result.image)))
    except (ValueError, AttributeError, NotImplementedError, OSError) as exc:
        # A scan the gateway could not read still gets its report, saying so.
        draw.text(
            (80, y), "The scan's pixels could not be read to show here.", fill="black", font=small
        )
        log.warning("scan %s: pixels unreadable for the PDF: %s", result.scan_id, exc)
        y += 44
    if result.heatmap_png:
        try:
            overlay = Image.open(io.BytesIO(result.heatmap_png)).convert("RGB")
            tiles.append(("Grad-CAM overlay", overlay))
        except (OSError, ValueError) as exc:  # the report still goes out, without the overlay
            log.warning("scan %s: Grad-CAM overlay unreadable, left out: %s", result.scan_id, exc)
    side = 520
    for i, (title, picture) in enumerate(tiles):
        tile = ImageOps.contain(picture, (side, side))  # small scans are enlarged to the tile
        x = 80 + i * (side + 40)
        draw.text((x, y + 20), title, fill="black", font=small)
        page.paste(tile, (x, y + 60))
    draw.text(
        (80, PAGE[1] - 80),
        "Produced by software; a clinician is responsible for the diagnosis.",
        fill="gray",
        font=small,
    )
    return page


def pdf_dataset(result: FinalResult, pdf: bytes, manufacturer: str = "edgeward") -> Dataset:
    """An Encapsulated PDF instance (PS3.3 A.45.1) in the original study."""
    now = dt.datetime.now()
    reviewed = result.source == "review"
    # A reviewer's PDF is a second instance in the report series, beside the automated one.
    uid = generate_uid(entropy_srcs=[result.scan_id, "pdf-review" if reviewed else "pdf"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = uid
    for kw in COPY_FROM_IMAGE:
        setattr(ds, kw, result.image.get(kw, ""))
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[result.scan_id, "pdf-series"])
    ds.SeriesNumber = SERIES_NUMBER
    ds.Manufacturer = manufacturer
    ds.ConversionType = "SYN"
    ds.InstanceNumber = 2 if reviewed else 1
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the page names the patient
    ds.DocumentTitle = "Diabetic retinopathy screening result" + (", reviewed" if reviewed else "")
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    return ds


def pdf_bytes(result: FinalResult, institution: str) -> bytes:
    ds = pdf_dataset(result, render_pdf(result, institution))
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
