"""`edgeward models build`: read the rendered data, train, calibrate, choose thresholds, evaluate,
export, quantise and register each fundus model, then promote it to champion."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.architectures import WithFeatures, build_architecture
from models.calibrate import fit_calibration
from models.complexity import count_flops, count_params
from models.counter.data import KIND as COUNTER_KIND
from models.counter.data import counter_plan
from models.counter.data import request as counter_request
from models.data import KIND as FUNDUS_KIND
from models.data import Split, fundus_dataset, nonfundus, splits, tensors
from models.data import request as fundus_request
from models.datasets import DatasetRequest
from models.export import export_onnx
from models.gate_data import (
    GATED_MODEL,
    GateRecipe,
    GateSet,
    gate_dataset,
    gate_recipe,
    gate_request,
    load_gate,
)
from models.metrics import ece_noise_floor, subgroup_metrics
from models.mirror_scoring import mirror_gap, mirror_images, scored
from models.ood import fit_reference, separation_check
from models.plan import BuildPlan, ModelRecipe, plan
from models.progress import init_worker
from models.quantize import quantize_int8, run_onnx
from models.recipe_record import BUILT_REASON, RECORD_KEY, changes, outdated, recipe_record
from models.reference import build_reference
from models.register import register_model
from models.tasks import TASKS, FundusTask, QualityTask
from models.train import predict, train
from shared.errors import EdgewardError
from shared.mirror import MIRROR_GAP, mirror_averaged
from shared.preprocess import PreprocessSpec, preprocess
from shared.probabilities import softmax
from shared.registry import Manifest, Registry
from shared.registry.calibration import calibrated_probabilities

log = logging.getLogger(__name__)
COUNTER = "traffic-counter"
PARITY_IMAGES = 64
TRAIN_THREADS = 1  # per model: see build_all


class StageClock:
    """Wall and this process's CPU seconds per build stage, kept in the manifest."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}
        self._wall, self._cpu = time.monotonic(), time.process_time()

    def lap(self, stage: str) -> None:
        wall, cpu = time.monotonic(), time.process_time()
        self.stages[stage] = {
            "wall_s": round(wall - self._wall, 1),
            "cpu_s": round(cpu - self._cpu, 1),
        }
        self._wall, self._cpu = wall, cpu


def _nonfundus(spec: PreprocessSpec, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Preprocessed non-fundus inputs by kind, for the OOD separation check."""
    return {k: np.stack([preprocess(im, spec) for im in images]) for k, images in raw.items()}


def build_model(
    name: str,
    recipe: ModelRecipe,
    *,
    splits: dict[str, Split],
    snapshot: dict[str, Any],
    ood_images: dict[str, np.ndarray],
    registry: Registry,
    workdir: Path,
    gate: GateSet | None = None,
    record: dict[str, Any] | None = None,
) -> Manifest:
    """Train, calibrate, evaluate, export and register one fundus model; returns its manifest.

    With a gate set (the quality model), its `reject` threshold is chosen on the gate set's
    calibrate split for what the classical gate lets through, and reported on its test split.
    """
    started = time.monotonic()
    task: FundusTask = TASKS[name]
    spec = recipe.spec
    tr, va, te = (task.select(splits[s]) for s in ("train", "val", "test"))
    y_tr, y_va, y_te = task.targets(tr), task.targets(va), task.targets(te)
    for split_name, y in (("train", y_tr), ("validation", y_va), ("test", y_te)):
        if len(np.unique(y)) < 2:
            raise EdgewardError(
                f"{name}: the {split_name} split has only class {np.unique(y).tolist()}; "
                "render more scans (a larger plan) so every class appears"
            )
    clock = StageClock()
    torch.manual_seed(recipe.train.seed)
    model = build_architecture(recipe.arch, recipe.arch_kwargs)
    train(
        model,
        tr.images,
        y_tr,
        spec,
        config=recipe.train,
        loss_fn=task.loss,
        augment=recipe.augment,
        desc=f"train {name}",
        sample_weights=task.sample_weights(y_tr),
    )

    clock.lap("train")
    # `view_*`: the view alone (OOD references: the gateway scores the view's own outputs);
    # `logits_*`: what the task is scored on (view and mirror averaged for the triage net).
    view_va, feats_va = predict(model, va.images, spec)
    logits_va, mirror_va = scored(model, va.images, spec, view_va, task)
    temperature, calibration = fit_calibration(logits_va, y_va)
    probs_va = calibrated_probabilities(logits_va, temperature, calibration)
    thresholds, operating_point = task.choose(probs_va, y_va)
    if mirror_va is not None:
        gap, chosen = mirror_gap(view_va, mirror_va, temperature, calibration, task)
        thresholds[MIRROR_GAP] = gap
        operating_point[MIRROR_GAP] = chosen

    def p_reject(images: np.ndarray) -> np.ndarray:
        probs = calibrated_probabilities(predict(model, images, spec)[0], temperature, calibration)
        return probs[:, task.labels.index("reject")]

    if gate is not None and isinstance(task, QualityTask):
        thresholds, operating_point = task.choose_on_gate(
            p_reject(gate.calibrate.images), gate.calibrate, thresholds
        )

    view_te, feats_te = predict(model, te.images, spec)
    logits_te, _ = scored(model, te.images, spec, view_te, task)
    probs_te = calibrated_probabilities(logits_te, temperature, calibration)
    metrics = task.evaluate(probs_te, y_te, thresholds)
    if gate is not None and isinstance(task, QualityTask):
        metrics |= task.gate_metrics(p_reject(gate.test.images), gate.test, thresholds)
    metrics["uncalibrated_ece"] = task.evaluate(softmax(logits_te), y_te, thresholds)["ece"]
    # what a perfectly calibrated model would score on this many held-out images
    metrics["ece_noise_floor"] = ece_noise_floor(probs_te)

    def on_subset(idx: np.ndarray) -> dict[str, float]:
        return task.evaluate(probs_te[idx], y_te[idx], thresholds)

    per_group, gaps = subgroup_metrics(te.groups(), on_subset)
    clock.lap("calibrate_evaluate")

    # OOD reference from training-distribution data (no augmentation)
    _, feats_tr = predict(model, tr.images, spec)
    ood = fit_reference(feats_tr, feats_va, view_va)
    kinds = _nonfundus(spec, ood_images)
    outputs = {k: predict_raw(model, x) for k, x in kinds.items()}
    ood["check"] = separation_check(ood, outputs, view_te, feats_te)

    reference = build_reference(va.images, probs_va.max(1), task.scores(probs_va))
    clock.lap("ood_reference")

    # export with the contract's two outputs; parity on 64 held-out images
    onnx_path = workdir / name / "model.onnx"
    example = torch.from_numpy(tensors(splits["test"].images[:PARITY_IMAGES], spec))
    parity = export_onnx(WithFeatures(model), example, onnx_path, ["logits", "features"])
    pt_path = workdir / name / "model.pt"
    torch.save(model.state_dict(), pt_path)
    files: dict[str, Path | tuple[Path, dict[str, Any]]] = {"onnx": onnx_path, "pytorch": pt_path}
    clock.lap("export_parity")

    extra: dict[str, Any] = {
        **({RECORD_KEY: record} if record is not None else {}),
        "architecture": {"name": recipe.arch, "kwargs": recipe.arch_kwargs},
        "complexity": {"params": count_params(model), "flops": count_flops(model, recipe.size)},
        "ood": ood,
        "reference": reference,
        **({"gate_set": gate.snapshot} if gate is not None else {}),
        "training": {
            **asdict(recipe.train),
            "augment": None if recipe.augment is None else asdict(recipe.augment),
            "n_train": len(tr),
            "n_validation": len(va),
            "n_test": len(te),
            "class_counts_train": np.bincount(y_tr, minlength=len(task.labels)).tolist(),
            "class_counts_test": np.bincount(y_te, minlength=len(task.labels)).tolist(),
        },
        "outputs": {
            "logits": "[N, C]: the manifest's calibration turns them into probabilities",
            "features": f"[N, {model.head.in_features}]: pooled penultimate features",
        },
    }
    if recipe.quantize:
        int8_path = workdir / name / "model.int8.onnx"
        calib = tensors(tr.images[:64], spec)
        quantize_int8(onnx_path, int8_path, calib)
        int8_logits = run_onnx(int8_path, tensors(te.images, spec))["logits"]
        if task.mirror_averaged:
            mirrored = run_onnx(int8_path, tensors(mirror_images(te.images), spec))["logits"]
            int8_logits = mirror_averaged(int8_logits, mirrored)
        int8_probs = calibrated_probabilities(int8_logits, temperature, calibration)
        int8_metrics = task.evaluate(int8_probs, y_te, thresholds)
        delta = {k: int8_metrics[k] - metrics[k] for k in metrics if k in int8_metrics}
        files["onnx_int8"] = (int8_path, {"quantisation": "static QDQ int8, per-channel"})
        extra["int8"] = {"metrics": int8_metrics, "change_vs_fp32": delta}
        clock.lap("int8")
    extra["build_seconds"] = round(time.monotonic() - started, 1)
    extra["build_profile"] = {"torch_threads": torch.get_num_threads(), **clock.stages}

    manifest = register_model(
        registry,
        name,
        task.name,
        files,
        {
            "preprocess": spec,
            "input_shape": ["batch", 3, recipe.size, recipe.size],
            "labels": list(task.labels),
            "temperature": temperature,
            "calibration": calibration,
            "thresholds": thresholds,
            "operating_point": operating_point,
            "metrics": metrics,
            "subgroup_metrics": per_group,
            "subgroup_gap": gaps,
            "data_snapshot": snapshot,
            "parity": parity,
            "extra": extra,
        },
    )
    return registry.set_stage(name, manifest.version, "champion", reason=BUILT_REASON)


def predict_raw(model: torch.nn.Module, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, features) of already-preprocessed inputs."""
    assert isinstance(model, torch.nn.Module)
    with torch.no_grad():
        lg, ft = WithFeatures(model).eval()(torch.from_numpy(inputs))  # type: ignore[arg-type]
    return lg.numpy(), ft.numpy()


def build_all(
    registry: Registry,
    *,
    quick: bool,
    seed: int,
    only: Sequence[str] | None,
    if_missing: bool,
    cache_dir: Path,
) -> list[Manifest]:
    """Build the requested models (default: all), skipping those with a champion if asked."""
    torch.set_num_threads(2)
    the_plan = plan(quick, seed)
    known = [*the_plan.models, COUNTER]
    wanted = list(only) if only else known
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise EdgewardError(f"unknown model {unknown[0]!r} for --only; choose from {known}")
    if if_missing:
        wanted = [n for n in wanted if not _current_champion(registry, n, quick, seed)]
    fundus = [n for n in wanted if n in the_plan.models]
    if fundus:
        # Models that share an input size share its rendered views; render them all up front
        # (in parallel). The counter's frames are rendered inside its job, beside the training.
        sizes = sorted({the_plan.models[n].size for n in fundus})
        fundus_dataset(the_plan.data, [PreprocessSpec(size=s) for s in sizes], cache_dir)
    if GATED_MODEL in fundus:
        gate_dataset(_gate_recipe(quick, seed), _gated_spec(the_plan), cache_dir)
    # Longest first, so the last job to start is a short one.
    jobs = sorted(wanted, key=lambda n: -JOB_COST.get(n, 0))
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    args = (registry.root, quick, seed, cache_dir)
    built: list[Manifest] = []
    # One thread per model, always: torch's kernels sum in another order with another thread
    # count, and the nets that come out differ (`--only fundus-triage` with two threads cleared
    # 28 of 44 real healthy photographs, the full build's one-thread net of the same recipe and
    # seed 24). A model is then a function of its recipe and seed, whatever is built beside it
    # and however many cores the machine has; the cores go to building models side by side.
    if workers == 1:
        for n in jobs:
            built += _build_job(n, *args)
    else:
        ctx = get_context("spawn")
        line = ctx.Value("i", 0)
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=init_worker, initargs=(ctx.RLock(), line)
        ) as pool:
            futures = [pool.submit(_build_job, n, *args) for n in jobs]
            for future in as_completed(futures):
                built += future.result()
    order = {n: i for i, n in enumerate(known)}
    return sorted(built, key=lambda m: order.get(m.name, len(order)))


# CPU seconds of each job in the full build (one thread, measured on this box); they order jobs.
JOB_COST = {
    "fundus-triage": 370,
    "fundus-grader": 275,
    "traffic-counter": 185,
    "fundus-quality": 70,
}


def current_record(name: str, quick: bool, seed: int) -> dict[str, Any]:
    """What building `name` today is made of (models/recipe_record.py)."""
    if name == COUNTER:
        return recipe_record("counter_net", counter_plan(quick, seed), COUNTER_KIND)
    the_plan = plan(quick, seed)
    return recipe_record(the_plan.models[name], the_plan.data, FUNDUS_KIND)


def outdated_champions(registry: Registry) -> list[str]:
    """A line for each champion that today's full or quick recipe (at its seed) would not build."""
    lines = []
    for name in [*plan(False, 0).models, COUNTER]:
        champion = registry.champion(name)
        if champion is None:
            continue
        recorded = champion.extra.get(RECORD_KEY)
        data = recorded.get("data") if isinstance(recorded, dict) else None
        seed = int(data.get("seed", 0)) if isinstance(data, dict) and name != COUNTER else 0
        # against the plan it is closest to (a quick registry against the quick plan)
        today = min(
            (current_record(name, quick, seed) for quick in (False, True)),
            key=lambda current: len(changes(recorded, current)),
        )
        why = outdated(champion, today)
        if why is not None:
            lines.append(
                f"{champion.model_id} was built {why}; to measure what this code builds, "
                f"rebuild it (`edgeward models build --only {name}`)"
            )
    return lines


def _current_champion(registry: Registry, name: str, quick: bool, seed: int) -> bool:
    """True when `name` has a champion of today's recipe (or one the site chose): skip it."""
    champion = registry.champion(name)
    if champion is None:
        return False
    why = outdated(champion, current_record(name, quick, seed))
    if why is None:
        print(f"{name}: champion {champion.model_id} exists, skipped")
        return True
    print(f"{name}: champion {champion.model_id} was built {why}; building it again")
    return False


def _build_job(name: str, root: Path, quick: bool, seed: int, cache_dir: Path) -> list[Manifest]:
    """Build one model (in a worker process when parallel); its data comes from the cache."""
    torch.set_num_threads(TRAIN_THREADS)
    registry = Registry(root)
    if name == COUNTER:
        return _build_counter(registry, quick, seed, cache_dir)
    the_plan = plan(quick, seed)
    recipe = the_plan.models[name]
    spec = recipe.spec
    dataset = fundus_dataset(the_plan.data, [spec.view()], cache_dir)
    gate = load_gate(_gate_recipe(quick, seed), spec, cache_dir) if name == GATED_MODEL else None
    with tempfile.TemporaryDirectory(prefix="edgeward-build-") as tmp:
        manifest = build_model(
            name,
            recipe,
            splits=splits(dataset, the_plan.data, spec),
            snapshot=dataset.snapshot,
            ood_images=nonfundus(dataset),
            registry=registry,
            workdir=Path(tmp),
            gate=gate,
            record=current_record(name, quick, seed),
        )
    print(summary_line(manifest), flush=True)
    return [manifest]


def _gate_recipe(quick: bool, seed: int) -> GateRecipe:
    """The gate set photographed like the training data (same camera-family share)."""
    return gate_recipe(quick, seed, plan(quick, seed).data.family_rate)


def _gated_spec(the_plan: BuildPlan) -> PreprocessSpec:
    return PreprocessSpec(size=the_plan.models[GATED_MODEL].size)


def _build_counter(registry: Registry, quick: bool, seed: int, cache_dir: Path) -> list[Manifest]:
    from models.counter.build import build_counter

    record = current_record(COUNTER, quick, seed)
    return [build_counter(registry, quick=quick, seed=seed, cache_dir=cache_dir, record=record)]


def dataset_requests(quick: bool, seed: int) -> list[DatasetRequest]:
    """Every dataset a build of this plan reads (`edgeward sim datasets` renders them)."""
    the_plan = plan(quick, seed)
    sizes = sorted({m.size for m in the_plan.models.values()})
    counter = counter_plan(quick, seed)
    return [
        fundus_request(the_plan.data, [PreprocessSpec(size=s) for s in sizes]),
        gate_request(_gate_recipe(quick, seed), _gated_spec(the_plan)),
        counter_request(counter.train),
        counter_request(counter.test),
    ]


KEY_METRICS = {
    "quality": ("gate_reject_recall", "reject_recall", "gradable_kept", "ece"),
    "triage": ("auc", "sensitivity_not_cleared", "ece"),
    "grader": ("auc", "sensitivity", "specificity", "ece"),
}


def key_metrics(manifest: Manifest) -> str:
    keys = KEY_METRICS.get(manifest.task) or tuple(sorted(manifest.metrics))[:3]
    return " ".join(f"{k}={manifest.metrics[k]:.3f}" for k in keys if k in manifest.metrics)


def summary_line(manifest: Manifest) -> str:
    return f"{manifest.model_id} -> {manifest.stage}: {key_metrics(manifest)}"
