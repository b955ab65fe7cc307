"""From grade probabilities to the clinic's answer, and whether a person must look (uncertain,
disputed, or doubted by the gateway). The cloud decides with it; `edgeward models evaluate`
reports what it would have answered, so a site's acceptance test reads the same rule."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from shared.verdicts import Verdict, answer_withheld, readability_doubts

REFERABLE_FROM_GRADE = 2  # ICDR: moderate NPDR or worse is referable


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    confidence: float  # calibrated probability that the refer/no-refer call is right
    needs_review: bool
    review_reason: str
    grade_verdict: Verdict  # what the grade alone says (refer / no_immediate_concern)


def review_band(
    thresholds: dict[str, float], configured: tuple[float, float]
) -> tuple[float, float]:
    """The wider of the operator's band and the model's calibrated one: more review, never less."""
    low = min(configured[0], thresholds.get("review_low", configured[0]))
    high = max(configured[1], thresholds.get("review_high", configured[1]))
    return low, high


def sampled(scan_id: str, rate: float) -> bool:
    """Whether the scan is in the quality-assurance sample (stable per scan id)."""
    digest = hashlib.sha256(f"qa-sample:{scan_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < rate * 2**64


def decide(
    referable_probability: float,
    thresholds: dict[str, float],
    band: tuple[float, float],
    edge_verdict: str = "",
    *,
    qa_sample: bool = False,
    edge_codes: Sequence[str] = (),
) -> Decision:
    """The cloud's answer. The grader settles the edge triage net's uncertainty, but not the
    gateway's doubt that the photograph can be read: an unfamiliar photograph (quality net, OOD)
    gets no automatic answer, and any other doubt (a quality warning, borderline quality, a
    triage answer that flips when mirrored) no all-clear, as at the edge."""
    p = referable_probability
    refer = p >= thresholds.get("referable", 0.5)
    cloud = Verdict.REFER if refer else Verdict.NO_IMMEDIATE_CONCERN
    confidence = p if refer else 1.0 - p
    low, high = review_band(thresholds, band)
    reasons = []
    if low <= p <= high:
        reasons.append(
            f"uncertain: referable probability {p:.2f} is in the review band {low}-{high}"
        )
    disputed = {Verdict.REFER.value, Verdict.NO_IMMEDIATE_CONCERN.value}
    if edge_verdict in disputed and edge_verdict != cloud.value:
        reasons.append(f"tiers disagree: edge triage said {edge_verdict}, cloud grade says {cloud}")
    doubts = readability_doubts(edge_codes)
    if answer_withheld(doubts):
        reasons.append(
            f"the gateway found the photograph unfamiliar ({', '.join(doubts)}): "
            "a person decides, not a model"
        )
    elif doubts and cloud is Verdict.NO_IMMEDIATE_CONCERN:
        reasons.append(
            f"the gateway doubts the photograph can be read ({', '.join(doubts)}): "
            "the grade alone cannot clear it"
        )
    if not reasons and qa_sample:
        reasons.append("quality-assurance sample: a confident result picked for a second look")
    if reasons:
        return Decision(Verdict.REVIEW, confidence, True, "; ".join(reasons), cloud)
    return Decision(cloud, confidence, False, "", cloud)
