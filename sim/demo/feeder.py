"""The stream of scans a clinic's camera produces in the demo, with the truth kept aside."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sim.fundus.defects import QUALITY_RULES
from sim.fundus.dicom import to_dicom_bytes
from sim.fundus.generator import generate_sample
from sim.fundus.nonfundus import nonfundus_images

DEFECT_SHARE = 0.18  # the brief: 15-20% of scans carry an acquisition defect
NONFUNDUS_SHARE = 0.05


@dataclass(frozen=True)
class DemoScan:
    kind: str  # healthy | referable | defect | nonfundus
    fmt: str  # jpeg | dicom | png
    data: bytes
    content_type: str
    truth_grade: int | None
    defects: dict[str, float]
    laterality: str | None


def _encode_jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return bytes(buf)


def scan_stream(clinic_index: int, n: int, seed: int, size: int = 1024) -> list[DemoScan]:
    """`n` scans for one clinic: DICOM and JPEG, healthy, referable, defective, non-fundus."""
    rng = np.random.default_rng([seed, clinic_index])
    others = nonfundus_images(seed + clinic_index, size=512)
    scans: list[DemoScan] = []
    for i in range(n):
        u = rng.random()
        index = clinic_index * 100_000 + i
        if u < NONFUNDUS_SHARE:
            name = sorted(others)[int(rng.integers(len(others)))]
            scans.append(
                DemoScan(
                    "nonfundus",
                    "png",
                    bytes(cv2.imencode(".png", others[name])[1]),
                    "image/png",
                    None,
                    {"nonfundus": 1.0},
                    None,
                )
            )
            continue
        if u < NONFUNDUS_SHARE + DEFECT_SHARE:
            name = sorted(QUALITY_RULES)[int(rng.integers(len(QUALITY_RULES)))]
            threshold = QUALITY_RULES[name].reject_at
            severity = float(threshold + rng.random() * (1.0 - threshold))
            sample = generate_sample(seed, index, size=size, defects={name: severity})
            kind = "defect"
        else:
            grade = int(rng.choice([0, 0, 0, 1, 2, 3, 4]))
            sample = generate_sample(seed, index, size=size, grade=grade, defects={})
            kind = "referable" if sample.labels.referable else "healthy"
        if rng.random() < 0.5:
            data, fmt, ctype = to_dicom_bytes(sample), "dicom", "application/dicom"
        else:
            data, fmt, ctype = _encode_jpeg(sample.image_bgr), "jpeg", "image/jpeg"
        scans.append(
            DemoScan(
                kind,
                fmt,
                data,
                ctype,
                sample.labels.grade,
                dict(sample.labels.defects),
                sample.labels.laterality,
            )
        )
    return scans
