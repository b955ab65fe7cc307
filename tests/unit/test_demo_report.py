"""The demo report explains an empty review queue from the verdicts, and flags a contradiction."""

from __future__ import annotations

from typing import Any

from sim.demo.facts import ScanRecord
from sim.demo.report import _empty_queue_reason


def _scan(edge: str, cloud: str | None) -> ScanRecord:
    graded: dict[str, Any] | None = None if cloud is None else {"verdict": cloud}
    return ScanRecord(
        "clinic-1", "s", "healthy", "jpeg", 0, {}, 0.0, edge_verdict=edge, cloud=graded
    )


def test_agreeing_confident_grades_explain_an_empty_queue() -> None:
    scans = [_scan("refer", "refer"), _scan("no_immediate_concern", "no_immediate_concern")]
    scans.append(_scan("retake", None))
    assert _empty_queue_reason(scans).startswith("No case needed a person: none of the 2 cloud")


def test_an_empty_queue_beside_a_dispute_or_an_uncertain_grade_is_called_out() -> None:
    disputed = _empty_queue_reason([_scan("no_immediate_concern", "refer")])
    uncertain = _empty_queue_reason([_scan("refer", "review")])
    assert "1 contradicted the edge" in disputed
    assert "1 cloud grades were uncertain" in uncertain
