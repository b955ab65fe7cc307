"""Checks of a Structured Report file shared by the unit and Orthanc tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import pydicom

from edge.clinic.reports.sr import EYES


def check_sr_file(path: Path, laterality: str, verdict: str) -> None:
    """Re-readable by pydicom and highdicom, laterality and verdict coded, and no error from
    dciodvfy (dicom3tools) where it is installed; highdicom validated it when it was built."""
    ds = pydicom.dcmread(path)
    report = hd.sr.ComprehensiveSR.from_dataset(ds)
    codes = {
        str(item.ConceptNameCodeSequence[0].CodeMeaning): item for item in report.ContentSequence
    }
    assert codes["Finding"].ConceptCodeSequence[0].CodeValue == verdict
    eye = codes["Image Laterality"].ConceptCodeSequence[0]
    assert eye.CodeValue == EYES[laterality].value
    assert "Algorithm Version" in codes and "Algorithm Name" in codes
    tool = shutil.which("dciodvfy")
    if tool is not None:
        out = subprocess.run(
            [tool, str(path)], check=False, capture_output=True, text=True, timeout=60
        )
        errors = [line for line in out.stderr.splitlines() if line.startswith("Error")]
        assert not errors, "\n".join(errors)
