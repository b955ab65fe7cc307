"""A tiny judging stand-in with C1's `ClinicPipeline.process` contract, for service tests only.

It decodes with OpenCV and calls every readable image gradable; the real pipeline is used
wherever its models are available.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from edge.clinic.outcome import ScanOutcome
from shared.verdicts import Verdict


class StandInPipeline:
    def process(
        self,
        data: bytes,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ScanOutcome:
        meta = metadata or {}
        t0 = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        ms = {"decode": (time.perf_counter() - t0) * 1000, "validate": 0.1, "quality": 0.1}
        if image is None:
            return ScanOutcome(
                Verdict.REJECTED,
                [f"scan {meta.get('scan_id')}: not a readable image; send a JPEG, PNG or DICOM"],
                ["undecodable"],
                1.0,
                ms,
                patient_id=meta.get("patient_id"),
            )
        ms["triage"] = 0.1
        ms["total"] = sum(ms.values())
        return ScanOutcome(
            Verdict.REFER,
            ["signs of referable disease"],
            ["referable"],
            0.7,
            ms,
            model_versions={"quality": "stand-in:0", "triage": "stand-in:0"},
            gradable=True,
            laterality=meta.get("laterality"),
            patient_id=meta.get("patient_id"),
            referable_probability=0.7,
        )

    def close(self) -> None:
        """Nothing to release: the stand-in loads no model."""


def sample_jpeg(index: int, side: int = 320) -> bytes:
    """A distinct JPEG per index: a lit disc on black, enough to decode."""
    img = np.zeros((side, side, 3), np.uint8)
    cv2.circle(img, (side // 2, side // 2), side // 2 - 8, (30, 60 + index % 100, 160), -1)
    cv2.putText(img, str(index), (side // 3, side // 2), cv2.FONT_HERSHEY_SIMPLEX, 2, (200,) * 3)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def fundus_jpeg(index: int, size: int = 512, grade: int = 0) -> bytes:
    """A synthetic fundus scan from the retinal twin, as a camera would send it."""
    from sim.fundus.generator import generate_sample

    sample = generate_sample(11, index, size=size, defect_rate=0.0, grade=grade)
    ok, buf = cv2.imencode(".jpg", sample.image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()
