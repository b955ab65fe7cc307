"""Retraining: when drift or enough reviewer labels call for it, fine-tune the champion on the
original data plus reviewed cases, compare on the same held-out set, register a challenger.

Runs as a Ray task (`run_retraining`) so it never blocks the serving replicas; the work itself
is a plain function (`retrain_candidate`) built from the model factory's own parts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from shared.config.flywheel import RetrainTriggers
from shared.monitoring.check import DriftCheck
from shared.preprocess import resize_for_model
from shared.registry import Manifest, Registry

log = logging.getLogger(__name__)
HOLDOUT_EVERY = 5  # every 5th reviewed case is held out to compare on the new population
UPWEIGHT_REVIEWED = 3.0
MIN_STEPS = 10  # reviewed cases are the population we now serve: see them more often


@dataclass(frozen=True)
class ReviewedCase:
    """A scan a reviewer labelled (ICDR grade); the image as decoded BGR pixels."""

    scan_id: str
    image_bgr: np.ndarray
    grade: int
    site: str = ""


def should_retrain(
    check: DriftCheck | None, new_labels: int, triggers: RetrainTriggers
) -> tuple[bool, str]:
    """(retrain?, why) from the latest drift check and the count of labels since the last build."""
    if triggers.on_drift and check is not None and check.alarm:
        what = [r.feature for r in check.drifted] + (["accuracy"] if check.concept.drifted else [])
        return True, f"drift in {', '.join(what)} of {check.model}"
    if new_labels >= triggers.min_new_labels:
        return True, f"{new_labels} new reviewer labels (trigger {triggers.min_new_labels})"
    return False, f"no drift and {new_labels}/{triggers.min_new_labels} new labels"


def reviewed_from_store(store: Any, limit: int = 100_000) -> list[ReviewedCase]:
    """Decided review cases of the cloud store (`cloud.store.SqliteStore`) with a grade label."""
    from cloud.decode import BadScanError, decode_scan

    out = []
    for case in store.cases(status="decided", limit=limit):
        if not (case.label or "").startswith("grade"):
            continue  # 'ungradable' teaches the grader nothing about disease
        try:
            image = decode_scan(case.image, case.content_type, case.scan_id)
        except BadScanError as exc:
            log.warning("reviewed case %s skipped: %s", case.case_id, exc)
            continue
        out.append(ReviewedCase(case.scan_id, image, int(case.label[5:]), case.site_id))
    return out


def _reviewed_split(cases: list[ReviewedCase], spec: Any) -> Any:
    from models.data import Split

    grades = np.array([c.grade for c in cases], dtype=np.int64)
    n = len(cases)
    return Split(
        images=np.stack([resize_for_model(c.image_bgr, spec) for c in cases]),
        grade=grades,
        referable=grades >= 2,
        quality=np.zeros(n, dtype=np.int64),
        camera=np.array(["reviewed"] * n),
        pigmentation=np.array(["unknown"] * n),
        laterality=np.array(["unknown"] * n),
        defects=["{}"] * n,
    )


def _concat(a: Any, b: Any) -> Any:
    from models.data import Split

    arrays = {
        f: np.concatenate([getattr(a, f), getattr(b, f)])
        for f in ("images", "grade", "referable", "quality", "camera", "pigmentation", "laterality")
    }
    return Split(**arrays, defects=[*a.defects, *b.defects])


def _champion_gate(extra: dict[str, Any], spec: Any, cache_dir: Path) -> Any:
    """The gate calibration set the champion's threshold was chosen on (None if it had none)."""
    from dataclasses import fields

    from models.gate_data import GateRecipe, load_gate

    snapshot = extra.get("gate_set")
    if not isinstance(snapshot, dict):
        return None
    recipe = GateRecipe(
        **{f.name: snapshot[f.name] for f in fields(GateRecipe) if f.name in snapshot}
    )
    return load_gate(recipe, spec, cache_dir)


def retrain_candidate(
    registry_dir: Path,
    name: str,
    reviewed: list[ReviewedCase],
    *,
    cache_dir: Path,
    epochs: int = 3,
    seed: int = 0,
    reason: str = "",
) -> dict[str, Any]:
    """Fine-tune `name`'s champion and register it as challenger; returns the manifest as JSON."""
    import torch

    from models.architectures import WithFeatures
    from models.calibrate import fit_calibration
    from models.data import DataRecipe, load_dataset, tensors
    from models.export import export_onnx
    from models.gate_data import REJECT
    from models.loading import load_torch_model
    from models.metrics import subgroup_metrics
    from models.ood import fit_reference
    from models.reference import build_reference
    from models.register import register_model
    from models.tasks import TASKS, QualityTask
    from models.train import Augment, TrainConfig, predict, train
    from shared.registry.calibration import calibrated_probabilities

    torch.set_num_threads(2)
    registry = Registry(registry_dir)
    champion = registry.load(name)
    cm = champion.manifest
    spec, task = cm.preprocess, TASKS[name]
    snap = cm.data_snapshot
    recipe = DataRecipe(
        **{k: snap[k] for k in ("n_train", "n_val", "n_test", "render_size", "defect_rate", "seed")}
    )
    splits = load_dataset(recipe, [spec], cache_dir)[spec.size]
    tr, va, te = (task.select(splits[s]) for s in ("train", "val", "test"))
    held = [c for i, c in enumerate(reviewed) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    learn = [c for i, c in enumerate(reviewed) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]
    if learn:
        tr = _concat(tr, _reviewed_split(learn, spec))
    y_tr = task.targets(tr)
    weights = task.sample_weights(y_tr)
    if learn:
        weights[-len(learn) :] *= UPWEIGHT_REVIEWED

    model = load_torch_model(champion)  # fine-tune: start from what works
    config = TrainConfig(epochs, lr=1e-3, seed=seed)
    steps = max(1, len(tr) // config.batch)
    # The one-cycle schedule needs a warm-up of at least one step: at least MIN_STEPS in all.
    config = replace(config, epochs=max(epochs, -(-MIN_STEPS // steps)))
    train(
        model, tr.images, y_tr, spec,
        config=config, loss_fn=task.loss, augment=Augment(),
        desc=f"retrain {name}", sample_weights=weights,
    )  # fmt: skip
    logits_va, feats_va = predict(model, va.images, spec)
    y_va = task.targets(va)
    temperature, calibration = fit_calibration(logits_va, y_va)

    def calibrated(logits: np.ndarray) -> np.ndarray:
        return calibrated_probabilities(logits, temperature, calibration)

    probs_va = calibrated(logits_va)
    thresholds, operating_point = task.choose(probs_va, y_va)
    gate = _champion_gate(cm.extra, spec, cache_dir) if isinstance(task, QualityTask) else None
    if gate is not None and isinstance(task, QualityTask):
        # As the build does: the threshold is chosen for what the classical gate lets through,
        # on the champion's own gate set, or a retrained quality net would come back with the
        # net-alone threshold (~0.05) and object to every photograph from a new camera again.
        gate_p = calibrated(predict(model, gate.calibrate.images, spec)[0])[:, REJECT]
        thresholds, operating_point = task.choose_on_gate(gate_p, gate.calibrate, thresholds)

    def evaluate(net: Any, to_probs: Any, th: dict[str, float], split: Any) -> dict[str, float]:
        logits, _ = predict(net, split.images, spec)
        return task.evaluate(to_probs(logits), task.targets(split), th)

    logits_te, _ = predict(model, te.images, spec)
    probs_te, y_te = calibrated(logits_te), task.targets(te)
    metrics = task.evaluate(probs_te, y_te, thresholds)
    champion_model = load_torch_model(champion)
    comparison: dict[str, Any] = {
        "champion": cm.model_id,
        "held_out": {
            "n": len(te),
            "candidate": metrics,
            "champion": evaluate(champion_model, cm.probabilities, cm.thresholds, te),
        },
    }
    if held:
        hs = _reviewed_split(held, spec)
        comparison["reviewed_holdout"] = {
            "n": len(held),
            "candidate": evaluate(model, calibrated, thresholds, hs),
            "champion": evaluate(champion_model, cm.probabilities, cm.thresholds, hs),
        }
    if gate is not None and isinstance(task, QualityTask):
        # the system's figures on the gate set's held-out split, as the build reports them
        gate_te = calibrated(predict(model, gate.test.images, spec)[0])[:, REJECT]
        metrics = metrics | task.gate_metrics(gate_te, gate.test, thresholds)
    per_group, gaps = subgroup_metrics(
        te.groups(), lambda idx: task.evaluate(probs_te[idx], y_te[idx], thresholds)
    )
    _, feats_tr = predict(model, tr.images, spec)
    ref_images = va.images if not learn else np.concatenate([va.images, tr.images[-len(learn) :]])
    ref_logits, _ = predict(model, ref_images, spec)
    ref_probs = calibrated(ref_logits)
    ids = sorted(c.scan_id for c in reviewed)
    snapshot = {
        **snap,
        "id": hashlib.sha256(json.dumps([snap.get("id"), ids]).encode()).hexdigest()[:16],
        "base_snapshot": snap.get("id"),
        "reviewed_cases": len(learn),
        "reviewed_holdout": len(held),
    }
    with tempfile.TemporaryDirectory(prefix="edgeward-retrain-") as tmp:
        onnx_path, pt_path = Path(tmp) / "model.onnx", Path(tmp) / "model.pt"
        example = torch.from_numpy(tensors(te.images[:16], spec))
        parity = export_onnx(WithFeatures(model), example, onnx_path, ["logits", "features"])
        torch.save(model.state_dict(), pt_path)
        manifest = register_model(
            registry, name, task.name, {"onnx": onnx_path, "pytorch": pt_path},
            {
                "preprocess": spec, "input_shape": cm.input_shape, "labels": list(task.labels),
                "temperature": temperature, "calibration": calibration,
                "thresholds": thresholds,
                "operating_point": operating_point, "metrics": metrics,
                "subgroup_metrics": per_group, "subgroup_gap": gaps, "data_snapshot": snapshot,
                "parity": parity,
                "extra": {
                    "architecture": cm.extra.get("architecture"),
                    "ood": fit_reference(feats_tr, feats_va, logits_va),
                    "reference": build_reference(ref_images, ref_probs.max(1),
                                                 task.scores(ref_probs)),
                    "comparison": comparison,
                    "retrained_from": cm.model_id,
                    "training": {"epochs": config.epochs, "n_train": len(tr), "fine_tuned": True},
                },
            },
        )  # fmt: skip
    why = reason or "retrained"
    held_cmp = comparison["held_out"]
    summary = ", ".join(
        f"{k} {held_cmp['candidate'][k]:.3f} vs {held_cmp['champion'][k]:.3f}"
        for k in sorted(held_cmp["candidate"])[:3]
    )
    manifest = registry.set_stage(
        name, manifest.version, "challenger",
        reason=f"{why}; {len(learn)} reviewed cases; held-out {summary} (candidate vs champion)",
    )  # fmt: skip
    return manifest.model_dump(mode="json")


def run_retraining(
    registry_dir: Path,
    name: str,
    reviewed: list[ReviewedCase],
    *,
    cache_dir: Path,
    epochs: int = 3,
    seed: int = 0,
    reason: str = "",
) -> Manifest:
    """Run `retrain_candidate` as a Ray task (Ray must be initialised by the caller)."""
    import ray

    remote: Any = ray.remote(num_cpus=1, max_retries=0)
    task = remote(retrain_candidate)
    ref = task.remote(
        registry_dir, name, reviewed, cache_dir=cache_dir, epochs=epochs, seed=seed, reason=reason
    )
    return Manifest.model_validate(ray.get(ref))
