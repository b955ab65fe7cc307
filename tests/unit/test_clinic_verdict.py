"""Every verdict rule of the clinic gateway, on controlled inputs: no model, no image, no luck.

Each case states the whole expected judgement (verdict, confidence, reasons, codes, gradable),
so flipping any comparison, boolean or constant in edge/clinic/verdict.py turns a case red.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from edge.clinic import verdict as rules
from edge.clinic.verdict import Evidence, Judgement, Note, TriageCall
from shared.verdicts import Verdict

NAN = float("nan")
CLEAR, REFER = 0.25, 0.75  # the triage manifest's operating point in these cases
THRESHOLD = 0.5  # the quality manifest's reject threshold: in doubt from 0.25 up
BLUR = Note("blur", "the scan is slightly soft")
DARK = Note("underexposed", "the scan is a little dark")
CUT = Note("fov_off_centre", "the disc is cut off — centre the eye and retake")
OOD = (
    "this does not look like the fundus photographs the models were trained on "
    "(another modality, another camera or not an eye) — a person must review it"
)
SUFFIX = "; not confident enough to clear it — a person must review"
CLEAR_0125 = "no signs of referable retinopathy (probability 0.12)"
REFER_0875 = "signs of referable retinopathy (probability 0.88)"
UNFAMILIAR = (
    "the quality model doubts this photograph (p={}) but no check found a defect bad "
    "enough to retake — a person must review it; retake only if it looks poor to them"
)
UNFAMILIAR_050, UNFAMILIAR_062, UNFAMILIAR_NAN = (
    UNFAMILIAR.format(p) for p in ("0.50", "0.62", "nan")
)
BAND_05 = "uncertain (referable probability 0.50, between 0.25 and 0.75) — a person must review it"


def evidence(
    p: float = 0.125,
    p_reject: float = 0.125,
    rejects: tuple[Note, ...] = (),
    warnings: tuple[Note, ...] = (),
    ood: tuple[str, ...] = (),
    *,
    mirrored: float | None = None,
) -> Evidence:
    return Evidence(
        rejects=rejects,
        warnings=warnings,
        p_reject=p_reject,
        reject_threshold=THRESHOLD,
        ood_codes=ood,
        p_referable=p,
        clear=CLEAR,
        refer=REFER,
        p_referable_mirrored=mirrored,
    )


def flipped(p: float, mirrored: float) -> str:
    return (
        "the triage model's answer changes when the photograph is mirrored "
        f"(probability {p:.2f}, mirrored {mirrored:.2f}): it cannot really read this "
        "photograph" + SUFFIX
    )


NIC, REVIEW, REFER_V, RETAKE = (
    Verdict.NO_IMMEDIATE_CONCERN,
    Verdict.REVIEW,
    Verdict.REFER,
    Verdict.RETAKE,
)
JUDGE_CASES = {
    "every stage agrees: all-clear": (
        evidence(),
        Judgement(NIC, 0.875, (CLEAR_0125,), ("triage_no_immediate_concern",), True, True),
    ),
    # Probe 1: a quality warning must demote the all-clear (the rule this product exists for).
    "a warning demotes an all-clear to review": (
        evidence(warnings=(BLUR,)),
        Judgement(
            REVIEW,
            0.875,
            (CLEAR_0125, BLUR.message + SUFFIX),
            ("triage_no_immediate_concern", "blur"),
            True,
            True,
        ),
    ),
    "every warning is listed, in order": (
        evidence(warnings=(BLUR, DARK)),
        Judgement(
            REVIEW,
            0.875,
            (CLEAR_0125, BLUR.message + SUFFIX, DARK.message + SUFFIX),
            ("triage_no_immediate_concern", "blur", "underexposed"),
            True,
            True,
        ),
    ),
    "a quality net at the doubt line demotes an all-clear": (
        evidence(p_reject=0.25),
        Judgement(
            REVIEW,
            0.875,
            (CLEAR_0125, "image quality is borderline (quality model p=0.25)" + SUFFIX),
            ("triage_no_immediate_concern", "quality_doubt"),
            True,
            True,
        ),
    ),
    "a quality net just under the doubt line lets the all-clear stand": (
        evidence(p_reject=0.2499),
        Judgement(NIC, 0.875, (CLEAR_0125,), ("triage_no_immediate_concern",), True, True),
    ),
    "warning and quality doubt together": (
        evidence(p_reject=0.375, warnings=(DARK,)),
        Judgement(
            REVIEW,
            0.875,
            (
                CLEAR_0125,
                DARK.message + SUFFIX,
                "image quality is borderline (quality model p=0.38)" + SUFFIX,
            ),
            ("triage_no_immediate_concern", "underexposed", "quality_doubt"),
            True,
            True,
        ),
    ),
    "a mirror image in the same band lets the all-clear stand": (
        evidence(mirrored=0.2499),
        Judgement(NIC, 0.875, (CLEAR_0125,), ("triage_no_immediate_concern",), True, True),
    ),
    # Probe: an all-clear that the mirror image would not give is no all-clear.
    "a mirror image in the review band demotes an all-clear": (
        evidence(mirrored=0.25),
        Judgement(
            REVIEW,
            0.875,
            (CLEAR_0125, flipped(0.125, 0.25)),
            ("triage_no_immediate_concern", "mirror_disagrees"),
            True,
            True,
        ),
    ),
    "a referral the mirror image would clear goes to a person": (
        evidence(p=0.875, mirrored=0.125),
        Judgement(
            REVIEW,
            0.875,
            (REFER_0875, flipped(0.875, 0.125)),
            ("triage_refer", "mirror_disagrees"),
            True,
            True,
        ),
    ),
    "both views in the review band: review, no mirror doubt": (
        evidence(p=0.5, mirrored=0.7499),
        Judgement(REVIEW, 0.5, (BAND_05,), ("triage_review",), True, True),
    ),
    "a broken mirror answer (NaN) never reads as agreement": (
        evidence(mirrored=NAN),
        Judgement(
            REVIEW,
            0.875,
            (CLEAR_0125, flipped(0.125, NAN)),
            ("triage_no_immediate_concern", "mirror_disagrees"),
            True,
            True,
        ),
    ),
    "a referral stays a referral despite a warning (told, not demoted)": (
        evidence(p=0.875, warnings=(BLUR,)),
        Judgement(REFER_V, 0.875, (REFER_0875, BLUR.message), ("triage_refer", "blur"), True, True),
    ),
    "the uncertain band is review, doubts told without the clear suffix": (
        evidence(p=0.5, p_reject=0.25),
        Judgement(
            REVIEW,
            0.5,
            (BAND_05, "image quality is borderline (quality model p=0.25)"),
            ("triage_review", "quality_doubt"),
            True,
            True,
        ),
    ),
    "a classical reject is a retake, certain, never uploaded": (
        evidence(rejects=(CUT,)),
        Judgement(RETAKE, 1.0, (CUT.message,), ("fov_off_centre",), False, False),
    ),
    "the quality net alone at its threshold is review, not retake: no defect to fix": (
        evidence(p_reject=0.5),
        Judgement(REVIEW, 0.5, (UNFAMILIAR_050,), ("quality_net",), True, False),
    ),
    "the quality net alone keeps the checks' warnings as reasons, never clears; the desk gets it": (
        evidence(p_reject=0.625, p=0.0, warnings=(DARK,)),
        Judgement(
            REVIEW,
            0.625,
            (UNFAMILIAR_062, DARK.message),
            ("quality_net", "underexposed"),
            True,
            False,
        ),
    ),
    "a quality net just under its threshold is no retake": (
        evidence(p_reject=0.4999, p=0.875),
        Judgement(
            REFER_V,
            0.875,
            (REFER_0875, "image quality is borderline (quality model p=0.50)"),
            ("triage_refer", "quality_doubt"),
            True,
            True,
        ),
    ),
    "checks and net both object: every reason, certain": (
        evidence(p_reject=0.875, rejects=(CUT, BLUR)),
        Judgement(
            RETAKE,
            1.0,
            (CUT.message, BLUR.message, "the quality model agrees: ungradable (p=0.88)"),
            ("fov_off_centre", "blur", "quality_net"),
            False,
            False,
        ),
    ),
    "a NaN from the quality net is review with no confidence, never a clear": (
        evidence(p_reject=NAN, p=0.0),
        Judgement(REVIEW, 0.0, (UNFAMILIAR_NAN,), ("quality_net",), True, False),
    ),
    "the gate comes before the OOD guard": (
        evidence(rejects=(CUT,), ood=("ood_energy",)),
        Judgement(RETAKE, 1.0, (CUT.message,), ("fov_off_centre",), False, False),
    ),
    "out of distribution is review even when triage would clear it": (
        evidence(p_reject=0.125, ood=("ood_mahalanobis", "ood_energy", "ood_energy")),
        Judgement(REVIEW, 0.875, (OOD,), ("ood_energy", "ood_mahalanobis"), True, True),
    ),
    "out of distribution is review even when triage would refer": (
        evidence(p=0.875, p_reject=0.375, ood=("ood_fov",)),
        Judgement(REVIEW, 0.625, (OOD,), ("ood_fov",), True, True),
    ),
    "a NaN from the triage net is review, never clear": (
        evidence(p=NAN),
        Judgement(
            REVIEW, 0.0, ("the triage model gave no valid answer",), ("triage_review",), True, True
        ),
    ),
}


@pytest.mark.parametrize("case", JUDGE_CASES)
def test_judge_gives_the_whole_expected_judgement(case: str) -> None:
    given, expected = JUDGE_CASES[case]
    assert rules.judge(given) == expected


def test_no_doubt_of_any_kind_is_the_only_way_to_an_all_clear() -> None:
    clear = [c for c, (_, j) in JUDGE_CASES.items() if j.verdict is NIC]
    assert clear and all(
        not (e.warnings or e.rejects or e.ood_codes)
        and e.p_reject < 0.25
        and (e.p_referable_mirrored is None or e.p_referable_mirrored < CLEAR)
        for e, _ in (JUDGE_CASES[c] for c in clear)
    )


TRIAGE_CASES = [
    (0.0, TriageCall(NIC, 1.0, "no signs of referable retinopathy (probability 0.00)")),
    (0.125, TriageCall(NIC, 0.875, CLEAR_0125)),
    (0.2499, TriageCall(NIC, 0.7501, "no signs of referable retinopathy (probability 0.25)")),
    (
        0.25,
        TriageCall(
            REVIEW,
            0.75,
            "uncertain (referable probability 0.25, between 0.25 and 0.75) — a person must "
            "review it",
        ),
    ),
    (0.5, TriageCall(REVIEW, 0.5, BAND_05)),
    (
        0.625,
        TriageCall(
            REVIEW,
            0.625,
            "uncertain (referable probability 0.62, between 0.25 and 0.75) — a person must "
            "review it",
        ),
    ),
    (0.75, TriageCall(REFER_V, 0.75, "signs of referable retinopathy (probability 0.75)")),
    (1.0, TriageCall(REFER_V, 1.0, "signs of referable retinopathy (probability 1.00)")),
    (NAN, TriageCall(REVIEW, 0.0, "the triage model gave no valid answer")),
    (-0.125, TriageCall(REVIEW, 0.0, "the triage model gave no valid answer")),
    (1.125, TriageCall(REVIEW, 0.0, "the triage model gave no valid answer")),
]


@pytest.mark.parametrize(("p", "expected"), TRIAGE_CASES)
def test_triage_bands_follow_the_manifest_thresholds(p: float, expected: TriageCall) -> None:
    got = rules.triage(p, CLEAR, REFER)
    assert got.verdict is expected.verdict and got.reason == expected.reason
    assert got.confidence == pytest.approx(expected.confidence, abs=1e-12)


@pytest.mark.parametrize(
    ("p_reject", "fails", "in_doubt"),
    [
        (0.0, False, False),
        (0.2499, False, False),
        (0.25, False, True),
        (0.4999, False, True),
        (0.5, True, True),
        (0.875, True, True),
        (NAN, True, False),
    ],
)
def test_quality_gate_and_doubt_lines(p_reject: float, fails: bool, in_doubt: bool) -> None:
    assert rules.quality_fails(p_reject, THRESHOLD) is fails
    assert rules.quality_in_doubt(p_reject, THRESHOLD) is in_doubt


@pytest.mark.parametrize(("p", "refers"), [(0.7499, False), (0.75, True), (0.875, True)])
def test_refers_from_the_refer_threshold_up(p: float, refers: bool) -> None:
    assert rules.refers(p, REFER) is refers


@pytest.mark.parametrize(
    ("value", "expected"), [(-0.5, 0.0), (0.0, 0.0), (0.375, 0.375), (1.0, 1.0), (1.5, 1.0)]
)
def test_confidence_is_kept_within_zero_and_one(value: float, expected: float) -> None:
    assert rules.unit(value) == expected


def test_a_nan_confidence_is_no_confidence() -> None:
    assert rules.unit(NAN) == 0.0 and not math.isnan(rules.unit(NAN))


@pytest.mark.parametrize(("attempt", "gave_up"), [(1, False), (3, False), (4, True), (9, True)])
def test_a_scan_goes_to_a_person_after_three_failed_attempts(attempt: int, gave_up: bool) -> None:
    assert rules.gave_up(attempt) is gave_up


def test_failure_reasons_say_what_happened_and_who_acts() -> None:
    assert rules.gave_up_reason(4) == (
        "the gateway failed to judge this scan 3 times; a person must look at it"
    )
    assert rules.failure_reason(RuntimeError("runtime exploded")) == (
        "the gateway could not judge this scan (RuntimeError: runtime exploded); "
        "a person must look at it"
    )


@pytest.mark.parametrize(
    ("verdict", "needs_review", "expected"),
    [
        ("refer", False, REFER_V),
        ("no_immediate_concern", False, NIC),
        ("retake", False, RETAKE),
        ("refer", True, REVIEW),
        ("no_immediate_concern", True, REVIEW),
        ("maybe", False, REVIEW),
        ("", False, REVIEW),
    ],
)
def test_the_cloud_verdict_shown_is_review_when_unknown_or_doubtful(
    verdict: str, needs_review: bool, expected: Verdict
) -> None:
    assert rules.cloud_verdict(verdict, needs_review) is expected


def test_machine_codes_are_the_documented_wire_names() -> None:
    assert (rules.GATEWAY_ERROR, rules.INTERNAL_ERROR) == ("gateway_error", "internal_error")
    assert (rules.QUALITY_NET, rules.QUALITY_DOUBT) == ("quality_net", "quality_doubt")
    assert rules.MIRROR_DOUBT == "mirror_disagrees"
    assert (rules.QUALITY_DOUBT_FRACTION, rules.MAX_ATTEMPTS) == (0.5, 3)


@pytest.mark.parametrize("value", [evidence(), rules.judge(evidence()), BLUR, TRIAGE_CASES[0][1]])
def test_evidence_and_judgements_cannot_be_changed_after_the_fact(value: object) -> None:
    field = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)


def test_a_small_threshold_is_shown_with_its_digits_not_as_zero() -> None:
    reason = rules.triage(0.0123, 0.004016, 0.98917).reason
    assert reason == (
        "uncertain (referable probability 0.01, between 0.004 and 0.99) — a person must review it"
    )
    assert rules.triage(0.00048, 0.004, 0.99).reason.endswith("(probability 0.00048)")
