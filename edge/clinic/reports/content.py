"""What every report of one final result says, gathered once from the gateway's record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import pydicom

from edge.clinic.review_follow import VERDICTS
from edge.clinic.store import ScanRecord
from shared.proto import edgeward_pb2 as pb

# Plain words for each verdict, as the PDF and the FHIR conclusion say them.
PLAIN_WORDS = {
    "refer": "Refer to an ophthalmologist: signs of referable diabetic retinopathy.",
    "no_refer": "No referable diabetic retinopathy found; routine rescreening.",
    "ungradable": "The image could not be graded; please retake the photograph.",
    "rejected": "The file is not a gradable fundus photograph; nothing was graded.",
    "review": "Uncertain: a grader must look at this image.",
}


@dataclass(frozen=True)
class FinalResult:
    """The final word on one DICOM scan: the cloud's when it graded, else the edge's."""

    scan_id: str
    source: str  # "cloud" or "edge"
    verdict: str
    reasons: list[str]
    confidence: float
    referable_probability: float | None
    grade_probabilities: list[float]
    model_name: str
    model_version: str
    laterality: str  # "R", "L" or "" (unknown)
    image: pydicom.Dataset = field(repr=False)  # the original instance, as the camera sent it
    heatmap_png: bytes = field(default=b"", repr=False)
    # A reviewer's decision (source "review"): who decided, as the desk knows them, and when.
    reviewer: str = ""
    reviewer_role: str = ""
    decided_at: float | None = None

    @property
    def plain_words(self) -> str:
        return PLAIN_WORDS.get(self.verdict, f"Result: {self.verdict}.")


def is_dicom(data: bytes) -> bool:
    return len(data) > 132 and data[128:132] == b"DICM"


def _split(version: str, fallback: str) -> tuple[str, str]:
    """'fundus-grader:3' -> ('fundus-grader', '3')."""
    name, _, ver = version.partition(":")
    return (name, ver) if ver else (fallback, version or "unknown")


def final_result(record: ScanRecord, image: pydicom.Dataset) -> FinalResult:
    """The final result of a judged scan; `image` is its DICOM instance (the camera's, or the
    gateway's Secondary Capture of a JPEG/PNG/TIFF scan)."""
    outcome: dict[str, Any] = record.outcome
    laterality = str(
        outcome.get("laterality") or image.get("ImageLaterality") or image.get("Laterality") or ""
    )
    if record.cloud_state == "graded" and record.cloud_result:
        result = pb.GradeResult.FromString(record.cloud_result)
        name, version = _split(result.model_version, "cloud-grader")
        return FinalResult(
            scan_id=record.scan_id,
            source="cloud",
            verdict=result.verdict,
            reasons=[result.review_reason] if result.review_reason else [],
            confidence=float(result.confidence),
            referable_probability=float(result.referable_probability),
            grade_probabilities=[float(p) for p in result.grade_probabilities],
            model_name=name,
            model_version=version,
            laterality=laterality.upper()[:1],
            image=image,
            heatmap_png=result.heatmap_png,
        )
    versions = dict(outcome.get("model_versions") or {})
    main = versions.get("triage") or versions.get("quality") or ""
    name, version = _split(main, "edge-rules")
    prob = outcome.get("referable_probability")
    return FinalResult(
        scan_id=record.scan_id,
        source="edge",
        verdict=str(record.verdict or outcome.get("verdict") or "review"),
        reasons=[str(r) for r in outcome.get("reasons") or []],
        confidence=float(outcome.get("confidence") or 0.0),
        referable_probability=None if prob is None else float(prob),
        grade_probabilities=[],
        model_name=name,
        model_version=version,
        laterality=laterality.upper()[:1],
        image=image,
    )


def reviewed_result(
    record: ScanRecord, image: pydicom.Dataset, result: pb.GradeResult
) -> FinalResult:
    """The final result a reviewer's decision makes: their verdict, the model's numbers as shown
    to them (the cloud's result), and who decided when."""
    review = result.review
    if review.outcome not in VERDICTS:
        raise ValueError(
            f"scan {record.scan_id}: review outcome {review.outcome!r} is not one of "
            f"{', '.join(VERDICTS)}; the cloud and gateway versions disagree"
        )
    cloud = final_result(record, image)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(review.decided_at))
    reasons = [
        f"Decided by {review.role or 'reviewer'} {review.reviewer} on {when}: {review.outcome} "
        f"({review.label}); this replaces the automated result.",
    ]
    if review.note:
        reasons.append(f"Reviewer's note: {review.note}")
    reasons += [f"Automated result shown to the reviewer: {r}" for r in cloud.reasons]
    name, version = _split(review.model_version or result.model_version, "cloud-grader")
    return replace(
        cloud,
        source="review",
        verdict=VERDICTS[review.outcome],
        reasons=reasons,
        model_name=name,
        model_version=version,
        reviewer=review.reviewer,
        reviewer_role=review.role or "reviewer",
        decided_at=float(review.decided_at),
    )
