"""Every rule that turns what the gateway measured about one scan into a verdict. Pure: no I/O.

The worst failure is a confident `no_immediate_concern` on an image the system cannot really
read, so an all-clear needs every stage to agree: no classical check objected (not even a
warning), the quality net is not in doubt, no out-of-distribution signal fired, the triage
probability (the view and its mirror image read together, shared/mirror.py) is below the
manifest's `clear` threshold, and the two readings lie no further apart than the manifest allows.
Any doubt becomes `review`; `retake` only for a defect a classical check can name, so the
photographer knows what to fix. Thresholds come from the model manifests, never from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge.clinic.ood import OOD_REASON
from shared.probabilities import log_odds_gap
from shared.quality_doubt import QUALITY_DOUBT_FRACTION  # the net in doubt: no all-clear
from shared.verdicts import QUALITY_NET, TRIAGE_PREFIX, Verdict

# A scan that failed to be judged this often (e.g. it crashed the gateway) goes to a person.
MAX_ATTEMPTS = 3
GATEWAY_ERROR = "gateway_error"
INTERNAL_ERROR = "internal_error"
QUALITY_DOUBT = "quality_doubt"
MIRROR_DOUBT = "mirror_disagrees"
DOUBT_SUFFIX = "; not confident enough to clear it — a person must review"
UNFAMILIAR_REASON = (
    "the quality model doubts this photograph (p={p:.2f}) but no check found a defect bad "
    "enough to retake — a person must review it; retake only if it looks poor to them"
)


@dataclass(frozen=True)
class Note:
    """One classical quality finding: a machine code and plain words for the operator."""

    code: str
    message: str


@dataclass(frozen=True)
class Evidence:
    """What the pipeline measured about one readable scan; `judge` turns it into a verdict."""

    rejects: tuple[Note, ...]  # classical checks at reject severity
    warnings: tuple[Note, ...]  # classical checks at warning severity
    p_reject: float  # the quality net's probability that the scan is ungradable
    reject_threshold: float  # from the quality manifest
    ood_codes: tuple[str, ...]  # out-of-distribution signals that fired
    p_referable: float  # the triage net's calibrated probability
    clear: float  # from the triage manifest
    refer: float  # from the triage manifest
    # The triage net's probability on the view alone and on its mirror image (None: not
    # measured). Nets are trained on both eyes, i.e. with mirror images, so the two are two
    # readings of one eye (shared/mirror.py). With `mirror_gap_limit` (from the triage
    # manifest) `p_referable` is their average and readings further apart than the limit are a
    # doubt; without it `p_referable` is the view's and readings in different bands are one.
    p_referable_mirrored: float | None = None
    p_referable_view: float | None = None
    mirror_gap_limit: float | None = None


@dataclass(frozen=True)
class TriageCall:
    verdict: Verdict
    confidence: float
    reason: str


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    confidence: float  # 0..1, the probability behind the verdict (1.0 for rule-based ones)
    reasons: tuple[str, ...]
    codes: tuple[str, ...]
    gradable: bool  # True -> the cloud grader gets a copy
    triaged: bool  # True -> the triage net's answer shaped the verdict


def unit(value: float) -> float:
    """A confidence within 0..1; a non-number (a broken runtime) is no confidence at all."""
    if math.isnan(value):
        return 0.0
    return min(max(value, 0.0), 1.0)


def quality_fails(p_reject: float, threshold: float) -> bool:
    """Written as `not p < t` so that NaN from a broken runtime fails too."""
    return not p_reject < threshold


def quality_in_doubt(p_reject: float, threshold: float) -> bool:
    return p_reject >= QUALITY_DOUBT_FRACTION * threshold


def refers(p_referable: float, refer: float) -> bool:
    return p_referable >= refer


def shown(p: float) -> str:
    """A probability for a person: two decimals, or two significant digits below 0.01, so that a
    clear threshold of 0.004 does not read as 0.00."""
    return f"{p:.2g}" if 0.0 < p < 0.01 else f"{p:.2f}"


def triage(p: float, clear: float, refer: float) -> TriageCall:
    """p >= refer -> refer; p < clear -> no_immediate_concern; between -> review."""
    if not 0.0 <= p <= 1.0:  # NaN from a broken runtime must never read as "clear"
        return TriageCall(Verdict.REVIEW, 0.0, "the triage model gave no valid answer")
    if refers(p, refer):
        return TriageCall(
            Verdict.REFER, p, f"signs of referable retinopathy (probability {shown(p)})"
        )
    if p < clear:
        return TriageCall(
            Verdict.NO_IMMEDIATE_CONCERN,
            1.0 - p,
            f"no signs of referable retinopathy (probability {shown(p)})",
        )
    return TriageCall(
        Verdict.REVIEW,
        max(p, 1.0 - p),
        f"uncertain (referable probability {shown(p)}, between {shown(clear)} and "
        f"{shown(refer)}) — a person must review it",
    )


def mirror_disagrees(e: Evidence) -> bool:
    """True when the view and its mirror image read the eye too differently to be trusted.

    Further apart than the manifest's `mirror_gap` log-odds; for a model without one, in
    different triage bands. A NaN reading never counts as agreement.
    """
    if e.p_referable_mirrored is None:
        return False
    view = e.p_referable if e.p_referable_view is None else e.p_referable_view
    if e.mirror_gap_limit is None:
        bands = triage(view, e.clear, e.refer), triage(e.p_referable_mirrored, e.clear, e.refer)
        return bands[0].verdict is not bands[1].verdict
    return not log_odds_gap(view, e.p_referable_mirrored) <= e.mirror_gap_limit


def _mirror_message(e: Evidence) -> str:
    view = e.p_referable if e.p_referable_view is None else e.p_referable_view
    mirrored = e.p_referable_mirrored
    assert mirrored is not None
    if e.mirror_gap_limit is None:
        how = f"(probability {view:.2f}, mirrored {mirrored:.2f})"
    else:
        how = (
            f"(probability {view:.3f}, mirrored {mirrored:.3f}: {log_odds_gap(view, mirrored):.1f} "
            f"log-odds apart; 199 in 200 of the scans it was validated on stay within "
            f"{e.mirror_gap_limit:.1f})"
        )
    return (
        f"the triage model's answer changes when the photograph is mirrored {how}: it cannot "
        "really read this photograph"
    )


def judge(e: Evidence) -> Judgement:
    """The verdict for a scan that decoded and validated, in order: gate, OOD, triage, doubt."""
    # 1. A defect the photographer can fix: retake, naming it (and the net's view, if it agrees).
    net_fails = quality_fails(e.p_reject, e.reject_threshold)
    if e.rejects:
        reasons = [n.message for n in e.rejects]
        codes = [n.code for n in e.rejects]
        if net_fails:
            codes.append(QUALITY_NET)
            reasons.append(f"the quality model agrees: ungradable (p={e.p_reject:.2f})")
        return Judgement(Verdict.RETAKE, 1.0, tuple(reasons), tuple(codes), False, False)

    # 1b. The quality net objects but no check names a fixable defect: that is unfamiliarity
    # (a camera or an eye unlike the training data), not a bad photograph. Telling the
    # photographer to retake a good photograph teaches them to ignore the gateway; a person
    # decides instead. The copy goes up so that the person is the cloud's review desk; the codes
    # travel with it and the cloud gives no automatic answer either (shared/verdicts.py).
    if net_fails:
        doubt = (UNFAMILIAR_REASON.format(p=e.p_reject), *(n.message for n in e.warnings))
        doubt_codes = (QUALITY_NET, *(n.code for n in e.warnings))
        return Judgement(Verdict.REVIEW, unit(e.p_reject), doubt, doubt_codes, True, False)

    # 2. Out of distribution: a person decides, at the review desk; never an automatic answer.
    if e.ood_codes:
        ood = tuple(sorted(set(e.ood_codes)))
        return Judgement(Verdict.REVIEW, unit(1.0 - e.p_reject), (OOD_REASON,), ood, True, True)

    # 3. Triage, with any remaining doubt demoting an all-clear to review.
    call = triage(e.p_referable, e.clear, e.refer)
    doubts = [(n.code, n.message) for n in e.warnings]
    if quality_in_doubt(e.p_reject, e.reject_threshold):
        doubts.append(
            (QUALITY_DOUBT, f"image quality is borderline (quality model p={e.p_reject:.2f})")
        )
    flips = mirror_disagrees(e)
    if flips:
        doubts.append((MIRROR_DOUBT, _mirror_message(e)))
    triage_codes = (f"{TRIAGE_PREFIX}{call.verdict.value}", *(code for code, _ in doubts))
    verdict = call.verdict
    # Doubt demotes an all-clear; an answer that flips with the picture demotes a referral too.
    if flips or (verdict is Verdict.NO_IMMEDIATE_CONCERN and doubts):
        verdict = Verdict.REVIEW
        doubt_reasons = [message + DOUBT_SUFFIX for _, message in doubts]
    else:  # still worth telling the operator
        doubt_reasons = [message for _, message in doubts]
    triage_reasons = (call.reason, *doubt_reasons)
    return Judgement(verdict, unit(call.confidence), triage_reasons, triage_codes, True, True)


def gave_up(attempt: int) -> bool:
    """True once a scan has been tried more often than MAX_ATTEMPTS: a person must look."""
    return attempt > MAX_ATTEMPTS


def gave_up_reason(attempt: int) -> str:
    return f"the gateway failed to judge this scan {attempt - 1} times; a person must look at it"


def failure_reason(error: BaseException) -> str:
    return (
        f"the gateway could not judge this scan ({type(error).__name__}: {error}); "
        "a person must look at it"
    )


def cloud_verdict(verdict: str, needs_review: bool) -> Verdict:
    """The cloud's answer as shown to the clinic: anything unknown or doubtful is `review`."""
    if needs_review:
        return Verdict.REVIEW
    try:
        return Verdict(verdict)
    except ValueError:
        return Verdict.REVIEW
