"""Evaluate candidates as the site would serve them, and hold the result against the site's bar.

The candidates stand in for the champions in a scratch copy of the registry (beside the current
champions of the models not being imported), and `edgeward models evaluate`'s own functions
judge the images there: the edge verdicts come from the real `edgeward edge check`, the grader's
probabilities from its registered ONNX file. The real registry is not touched until promotion.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from models.evaluate import evaluate_images, read_labels
from models.evaluate_summary import report_data, summarise
from models.importer.declaration import DEFAULT_NAMES, AcceptanceBar
from shared.errors import EdgewardError
from shared.registry import Manifest, Registry

# summary key, bar field, direction, what it is
CHECKS: tuple[tuple[str, str, str, str], ...] = (
    ("n_labelled", "min_labelled", "min", "labelled images"),
    ("auc", "min_auc", "min", "grader referable AUC"),
    ("ece", "max_ece", "max", "grader ECE"),
    ("sensitivity", "min_sensitivity", "min", "grader sensitivity"),
    ("specificity", "min_specificity", "min", "grader specificity"),
    ("retake_rate", "max_retake_rate", "max", "edge retake rate"),
    (
        "edge_all_clear_on_non_referable",
        "min_all_clear_on_non_referable",
        "min",
        "edge all-clear share on healthy images",
    ),
    (
        "edge_all_clear_on_referable",
        "max_all_clear_on_referable",
        "max",
        "edge all-clears on referable images",
    ),
    ("review_band_share", "max_review_band_share", "max", "grader review-band share"),
)
METRIC_KEYS = ("auc", "ece", "sensitivity", "specificity", "retake_rate", "review_band_share")


def scratch_registry(registry: Registry, candidates: list[Manifest], scratch: Path) -> Registry:
    """A registry where each candidate is its task's champion, the rest the current champions."""
    by_task = {m.task: m for m in candidates}
    target = Registry(scratch)
    for task, default in DEFAULT_NAMES.items():
        manifest = by_task.get(task) or registry.champion(default)
        if manifest is None:
            raise EdgewardError(
                f"the acceptance test needs a {task} model: registry {registry.root} has no "
                f"champion {default!r} and none is being imported; import it in the same "
                "command or build it with `edgeward models build`"
            )
        src = registry.version_dir(manifest.name, manifest.version)
        dest = target.version_dir(default, manifest.version)
        shutil.copytree(src, dest)
        staged = manifest.model_copy(update={"stage": "champion"})
        target.save(staged)
        if task in by_task and target.signing_key is not None:
            target.sign(staged)  # a gateway that trusts the site key must accept the stand-in
    return target


def evaluate(
    *,
    registry: Registry,
    candidates: list[Manifest],
    images: list[Path],
    labels_csv: Path | None,
    scratch: Path,
    out: Path,
) -> dict[str, Any]:
    """The evaluate report's data (summary + per image) with the candidates in place."""
    from models.evaluate_report import write_html_report

    staged = scratch_registry(registry, candidates, scratch)
    labels = read_labels(labels_csv) if labels_csv is not None else {}
    grader = DEFAULT_NAMES["grader"]
    results = evaluate_images(images, labels, staged.root, grader=grader)
    champion = staged.champion(grader)
    assert champion is not None  # scratch_registry put one there
    data = report_data(results, summarise(results, dict(champion.thresholds)))
    data["html"] = str(write_html_report(data, out))
    return data


def failed_bars(summary: dict[str, Any], bar: AcceptanceBar) -> list[str]:
    """Each bar not met, as `field: what was measured vs the bar`; empty when all are met."""
    failures = []
    for key, bar_field, direction, what in CHECKS:
        limit = getattr(bar, bar_field)
        if limit is None:
            continue
        value = summary.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            failures.append(f"{bar_field}: {what} could not be measured (no labelled images?)")
            continue
        if (direction == "min" and value < limit) or (direction == "max" and value > limit):
            sign = "<" if direction == "min" else ">"
            failures.append(f"{bar_field}: {what} is {value:.4g} {sign} bar {limit:g}")
    return failures


def metrics_of(summary: dict[str, Any]) -> dict[str, float]:
    """The manifest's metrics from an evaluate summary (measured values only)."""
    metrics = {k: float(summary[k]) for k in METRIC_KEYS if summary.get(k) is not None}
    metrics["n_images"] = float(summary.get("n", 0))
    metrics["n_labelled"] = float(summary.get("n_labelled", 0))
    return metrics


def acceptance_record(bar_path: Path | None, failures: list[str] | None) -> dict[str, Any]:
    """What the manifest keeps about the bar: `edgeward models promote` reads it back."""
    if bar_path is None or failures is None:
        return {"met": False, "bar": None, "failures": ["no acceptance bar was given"]}
    return {"met": not failures, "bar": str(bar_path), "failures": failures}


def promotion_refusal(manifest: Manifest) -> str | None:
    """Why an imported version may not become champion by hand; None when it may."""
    if not isinstance(manifest.extra.get("imported"), dict):
        return None
    record = manifest.operating_point.get("acceptance") or {}
    if record.get("met") is True:
        return None
    failures = "; ".join(record.get("failures") or ["it was never evaluated"])
    return (
        f"cannot promote {manifest.model_id}: it was imported and has not met the site's "
        f"acceptance bar ({failures}); import it again with `edgeward models import ... "
        "--bar FILE --promote`"
    )
