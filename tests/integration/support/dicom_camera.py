"""The camera side of the DICOM tests: dcmtk's real storescu/echoscu, and synthetic OP files."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
import pytest

from edge.clinic.outcome import ScanOutcome
from shared.dcmtk import dcmtk_tool
from sim.fundus.dicom import write_dicom
from sim.fundus.generator import generate_sample
from tests.integration.support.standin_pipeline import StandInPipeline

CAMERA = "FUNDUSCAM"
GATEWAY_AE = "EDGEWARD"
# storescu's flag that proposes each syntax of sim.fundus.dicom (plus the uncompressed ones).
PROPOSE = {
    "explicit": "-xe",
    "implicit": "-xi",
    "jpeg-baseline": "-xy",
    "jpeg2000": "-xv",
    "rle": "-xr",
    "deflate": "-xd",
}


def need(tool: str) -> str:
    path = dcmtk_tool(tool)
    if path is None:
        pytest.fail(f"dcmtk's {tool} not found: run `make dcmtk` (apt-get install dcmtk)")
    return path


def op_file(folder: Path, index: int, syntax: str = "explicit", **tags: Any) -> Path:
    """One synthetic OP 8-bit scan as a DICOM file (implicit: written explicit, sent implicit)."""
    sample = generate_sample(16, index, size=256, grade=2)
    path = folder / f"scan{index}-{syntax}.dcm"
    write_dicom(path, sample, "explicit" if syntax == "implicit" else syntax, **tags)
    return path


def storescu(
    port: int,
    *files: Path,
    syntax: str = "explicit",
    calling: str = CAMERA,
    flag: str = "",
    called: str = GATEWAY_AE,
) -> subprocess.CompletedProcess[str]:
    args = [need("storescu"), "-R", flag or PROPOSE[syntax], "-aet", calling, "-aec", called]
    return subprocess.run(
        [*args, "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def echoscu(port: int, calling: str = CAMERA) -> subprocess.CompletedProcess[str]:
    args = [need("echoscu"), "-aet", calling, "-aec", GATEWAY_AE, "127.0.0.1", str(port)]
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


class DicomStandInPipeline(StandInPipeline):
    """The service tests' stand-in, reading DICOM with pydicom (laterality from the header)."""

    def process(
        self,
        data: bytes,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ScanOutcome:
        meta = dict(metadata or {})
        if data[128:132] == b"DICM":
            ds = pydicom.dcmread(io.BytesIO(data))
            rgb = np.asarray(ds.pixel_array)  # RGB, also for YBR JPEG (pydicom converts)
            meta.setdefault("laterality", str(ds.get("ImageLaterality", "")))
            meta.setdefault("patient_id", str(ds.get("PatientID", "")))
            _ok, png = cv2.imencode(".png", rgb[..., ::-1])
            data = png.tobytes()
        return super().process(data, filename, content_type, meta)
