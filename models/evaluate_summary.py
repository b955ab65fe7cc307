"""The acceptance test's per-image record and its summary: verdict mix, retake rate, AUC with a
bootstrap interval, sensitivity and specificity, ECE with a reliability diagram, per source."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from models.evaluate_mirror import mirror_summary
from models.metrics import auc
from shared.verdicts import Verdict

BOOTSTRAP_DRAWS = 2000
RELIABILITY_BINS = 10


@dataclass
class ImageResult:
    """Everything the acceptance test learned about one photograph."""

    file: str
    source: str = ""
    edge_verdict: str = ""
    edge_reasons: list[str] = field(default_factory=list)
    edge_codes: list[str] = field(default_factory=list)
    edge_referable_probability: float | None = None
    referable_probability: float | None = None
    grade: int | None = None
    grade_probabilities: list[float] = field(default_factory=list)
    grader_band: str = ""  # below | review | above: where p falls against the review band
    label_referable: bool | None = None
    label_grade: int | None = None
    ood_scores: dict[str, float] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    error: str = ""
    # the same photograph mirrored left-right (models/evaluate_mirror.py); empty when skipped
    edge_verdict_mirrored: str = ""
    edge_referable_probability_mirrored: float | None = None
    referable_probability_mirrored: float | None = None
    # what the clinic is finally told: the edge's verdict where the scan stays at the edge, else
    # the cloud's answer by its rule (shared/decision.py) on this grader and the gateway's codes
    uploaded: bool = False
    final_verdict: str = ""
    final_reason: str = ""


# ---------------------------------------------------------------- summary


def bootstrap_auc_ci(
    scores: np.ndarray, positive: np.ndarray, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of the AUC over resamples that keep both classes."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        idx = rng.integers(0, len(scores), len(scores))
        if positive[idx].any() and not positive[idx].all():
            values.append(auc(scores[idx], positive[idx]))
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def reliability(
    p: np.ndarray, positive: np.ndarray, bins: int = RELIABILITY_BINS
) -> dict[str, Any]:
    """Binary ECE of P(referable) and the per-bin (confidence, frequency, count) it is made of."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows, total = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            mean_p, freq = float(p[inside].mean()), float(positive[inside].mean())
            total += inside.mean() * abs(mean_p - freq)
            rows.append({"bin": b, "mean_p": mean_p, "frequency": freq, "n": int(inside.sum())})
    return {"ece": float(total) if len(p) else float("nan"), "bins": rows, "n_bins": bins}


def _verdict_mix(results: list[ImageResult], final: bool = False) -> dict[str, int]:
    mix: dict[str, int] = {}
    for r in results:
        v = (r.final_verdict if final else r.edge_verdict) or "error"
        mix[v] = mix.get(v, 0) + 1
    return dict(sorted(mix.items()))


def _group_summary(results: list[ImageResult], thresholds: dict[str, float]) -> dict[str, Any]:
    n = len(results)
    mix = _verdict_mix(results)
    out: dict[str, Any] = {
        "n": n,
        "verdicts": mix,
        "final_verdicts": _verdict_mix(results, final=True),
        "retake_rate": mix.get("retake", 0) / n if n else float("nan"),
        "review_band_share": (
            sum(r.grader_band == "review" for r in results) / n if n else float("nan")
        ),
        **mirror_summary(results),
    }
    labelled = [
        r for r in results if r.label_referable is not None and r.referable_probability is not None
    ]
    out["n_labelled"] = len(labelled)
    if not labelled:
        return out
    p = np.array([r.referable_probability for r in labelled], dtype=np.float64)
    pos = np.array([bool(r.label_referable) for r in labelled])
    out["n_referable"] = int(pos.sum())
    out["auc"] = auc(p, pos)
    out["auc_ci95"] = list(bootstrap_auc_ci(p, pos))
    flagged = p >= thresholds.get("referable", 0.5)
    out["sensitivity"] = float(flagged[pos].mean()) if pos.any() else float("nan")
    out["specificity"] = float((~flagged[~pos]).mean()) if (~pos).any() else float("nan")
    out["reliability"] = reliability(p, pos)
    out["ece"] = out["reliability"]["ece"]
    for stage in ("edge", "final"):  # the edge's verdict, and the clinic's after the cloud
        cleared = np.array(
            [getattr(r, f"{stage}_verdict") == Verdict.NO_IMMEDIATE_CONCERN for r in labelled]
        )
        healthy = cleared[~pos]
        out[f"{stage}_all_clear_on_non_referable"] = (
            float(healthy.mean()) if healthy.size else float("nan")
        )
        out[f"{stage}_all_clear_on_referable"] = int(cleared[pos].sum())
    # what kept the labelled non-referable photographs from an all-clear at the edge: the first
    # thing a site reads when its healthy eyes go to review (a code per photograph, once)
    held: dict[str, int] = {}
    for r, ref in zip(labelled, pos, strict=True):
        if not ref and r.edge_verdict != Verdict.NO_IMMEDIATE_CONCERN:
            for code in set(r.edge_codes):
                held[code] = held.get(code, 0) + 1
    out["edge_codes_on_held_non_referable"] = dict(sorted(held.items(), key=lambda kv: -kv[1]))
    out["median_p_non_referable"] = float(np.median(p[~pos])) if (~pos).any() else None
    out["median_p_referable"] = float(np.median(p[pos])) if pos.any() else None
    return out


def summarise(results: list[ImageResult], thresholds: dict[str, float]) -> dict[str, Any]:
    summary = _group_summary(results, thresholds)
    summary["thresholds"] = thresholds
    reasons: dict[str, int] = {}
    for r in results:
        for code in set(r.edge_codes):
            reasons[code] = reasons.get(code, 0) + 1
    summary["edge_codes"] = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
    sources = sorted({r.source for r in results})
    summary["by_source"] = {
        s: _group_summary([r for r in results if r.source == s], thresholds) for s in sources
    }
    summary["errors"] = [f"{r.file}: {r.error}" for r in results if r.error]
    return summary


def _clean(value: Any) -> Any:
    """JSON without NaN (strict parsers refuse it): NaN -> null."""
    if isinstance(value, float):
        # significant digits, not decimals: a threshold of 3e-7 must not print as 0.0
        return None if np.isnan(value) else float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def report_data(results: list[ImageResult], summary: dict[str, Any]) -> dict[str, Any]:
    return _clean({"images": [asdict(r) for r in results], "summary": summary})
