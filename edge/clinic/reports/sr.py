"""The Comprehensive SR of one final result, attached to the original study (highdicom checks
the content tree and the evidence on construction)."""

from __future__ import annotations

import highdicom as hd
import pydicom
from highdicom.sr import CodedConcept
from pydicom.uid import generate_uid

from edge.clinic.reports.content import FinalResult

SCHEME = "99EDGEWARD"  # private coding scheme (PS3.16 8.1: local designators start with 99)
REPORT_TITLE = CodedConcept("18748-4", "LN", "Diagnostic imaging report")
LATERALITY = CodedConcept("111027", "DCM", "Image Laterality")
EYES = {"R": CodedConcept("24028007", "SCT", "Right"), "L": CodedConcept("7771000", "SCT", "Left")}
FINDING = CodedConcept("121071", "DCM", "Finding")
SOURCE_IMAGE = CodedConcept("121112", "DCM", "Source of Measurement")
ALGORITHM_NAME = CodedConcept("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION = CodedConcept("111003", "DCM", "Algorithm Version")
COMMENT = CodedConcept("121106", "DCM", "Comment")
PROBABILITY = CodedConcept("referable-probability", SCHEME, "Probability of referable DR")
CONFIDENCE = CodedConcept("confidence", SCHEME, "Confidence of the verdict")
NO_UNITS = CodedConcept("1", "UCUM", "no units")
VERDICTS = {
    "refer": "Referable diabetic retinopathy",
    "no_refer": "No referable diabetic retinopathy",
    "ungradable": "Ungradable image",
    "rejected": "Not a gradable fundus image",
    "review": "Needs review by a grader",
}
SERIES_NUMBER = 901  # the gateway's report series, apart from the camera's


def _grade(i: int) -> CodedConcept:
    return CodedConcept(f"icdr-grade-{i}", SCHEME, f"Probability of ICDR grade {i}")


REVIEWER = CodedConcept("reviewer", SCHEME, "Reviewer who decided")


def build_sr(
    result: FinalResult,
    institution: str,
    manufacturer: str = "edgeward",
    previous: pydicom.Dataset | None = None,
) -> hd.sr.ComprehensiveSR:
    """The SR of `result`; a reviewer's result amends `previous` (the automated SR) and is
    verified by the reviewer."""
    image = result.image
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    items: list[hd.sr.ContentItem] = [
        hd.sr.ImageContentItem(
            SOURCE_IMAGE, image.SOPClassUID, image.SOPInstanceUID, relationship_type=contains
        ),
    ]
    if result.laterality in EYES:
        items.append(
            hd.sr.CodeContentItem(LATERALITY, EYES[result.laterality], relationship_type=contains)
        )
    verdict = CodedConcept(result.verdict, SCHEME, VERDICTS.get(result.verdict, result.verdict))
    items.append(hd.sr.CodeContentItem(FINDING, verdict, relationship_type=contains))
    if result.referable_probability is not None:
        items.append(
            hd.sr.NumContentItem(
                PROBABILITY, result.referable_probability, NO_UNITS, relationship_type=contains
            )
        )
    reviewed = result.source == "review"
    if not reviewed:  # a person's decision has no model confidence
        items.append(
            hd.sr.NumContentItem(
                CONFIDENCE, result.confidence, NO_UNITS, relationship_type=contains
            )
        )
    for i, p in enumerate(result.grade_probabilities):
        items.append(hd.sr.NumContentItem(_grade(i), p, NO_UNITS, relationship_type=contains))
    items.append(
        hd.sr.TextContentItem(ALGORITHM_NAME, result.model_name, relationship_type=contains)
    )
    items.append(
        hd.sr.TextContentItem(ALGORITHM_VERSION, result.model_version, relationship_type=contains)
    )
    if reviewed:
        who = f"{result.reviewer_role} {result.reviewer}"
        items.append(hd.sr.TextContentItem(REVIEWER, who[:1024], relationship_type=contains))
    for reason in result.reasons:
        items.append(hd.sr.TextContentItem(COMMENT, reason[:1024], relationship_type=contains))
    container = hd.sr.ContainerContentItem(REPORT_TITLE)
    container.ContentSequence = hd.sr.ContentSequence(items)
    return hd.sr.ComprehensiveSR(
        evidence=[image],
        content=container,
        series_instance_uid=generate_uid(entropy_srcs=[result.scan_id, "sr-series"]),
        series_number=SERIES_NUMBER,
        # Derived from the scan: a rebuilt report is the same instance, so a PACS dedupes it.
        sop_instance_uid=generate_uid(entropy_srcs=[result.scan_id, result_kind(result, "sr")]),
        instance_number=2 if reviewed else 1,
        manufacturer=manufacturer,
        institution_name=institution,
        is_complete=True,
        is_final=True,
        is_verified=reviewed,
        # PN: the desk account (pseudonymous) as the family name; the caret says it is one.
        verifying_observer_name=f"{result.reviewer}^" if reviewed else None,
        verifying_organization=institution if reviewed else None,
        previous_versions=[previous] if reviewed and previous is not None else None,
    )


def result_kind(result: FinalResult, kind: str) -> str:
    """The UID seed of a report: a reviewer's report is a new instance, not a rebuild."""
    return f"{kind}-review" if result.source == "review" else kind


def sr_bytes(
    result: FinalResult, institution: str, previous: pydicom.Dataset | None = None
) -> bytes:
    from io import BytesIO

    sr = build_sr(result, institution, previous=previous)
    buf = BytesIO()
    pydicom.dcmwrite(buf, sr, enforce_file_format=True)
    return buf.getvalue()
