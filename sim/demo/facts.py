"""What the demo observed, and the checks a reader (and the end-to-end test) relies on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shared.verdicts import Verdict

SAFE_FOR_UNREADABLE = {Verdict.RETAKE.value, Verdict.REVIEW.value, Verdict.REJECTED.value}


@dataclass
class ScanRecord:
    clinic: str
    scan_id: str
    kind: str  # healthy | referable | defect | nonfundus
    fmt: str  # jpeg | dicom | png
    truth_grade: int | None
    defects: dict[str, float]
    submitted_at: float
    edge_verdict: str | None = None
    reasons: list[str] = field(default_factory=list)
    confidence: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    gradable: bool = False
    cloud: dict[str, Any] | None = None  # the cloud's GradeResult (JSON), once it arrived
    during_outage: bool = False
    study_uid: str | None = None  # set when the scan went to the gateway by C-STORE


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_scans(scans: list[ScanRecord], uploads_expected: int, uploads_done: int) -> list[Check]:
    """The promises the clinic side makes, checked on what actually happened."""
    missing = [s.scan_id for s in scans if s.edge_verdict is None]
    defect_bad = [
        f"{s.scan_id} ({','.join(s.defects)}) -> {s.edge_verdict}"
        for s in scans
        if s.kind == "defect" and s.edge_verdict not in SAFE_FOR_UNREADABLE
    ]
    ood_bad = [
        f"{s.scan_id} -> {s.edge_verdict}"
        for s in scans
        if s.kind == "nonfundus" and s.edge_verdict == Verdict.NO_IMMEDIATE_CONCERN.value
    ]
    return [
        Check(
            "every scan has a verdict",
            not missing,
            f"{len(scans) - len(missing)}/{len(scans)} scans have a verdict"
            + (f"; missing: {missing[:5]}" if missing else ""),
        ),
        Check(
            "every defect scan got retake or review",
            not defect_bad,
            f"{sum(s.kind == 'defect' for s in scans)} defect scans"
            + (f"; wrong: {defect_bad[:5]}" if defect_bad else ""),
        ),
        Check(
            "no non-fundus input got no_immediate_concern",
            not ood_bad,
            f"{sum(s.kind == 'nonfundus' for s in scans)} non-fundus inputs"
            + (f"; wrong: {ood_bad[:5]}" if ood_bad else ""),
        ),
        Check(
            "zero uploads lost across the outage",
            uploads_done == uploads_expected,
            f"{uploads_done}/{uploads_expected} gradable scans have the cloud's result",
        ),
    ]


def as_json(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
