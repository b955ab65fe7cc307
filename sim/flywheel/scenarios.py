"""Data-shift scenarios for watching the flywheel catch drift.

A clinic buys a new handheld camera with a colour cast, or a new clinic serves a population with
more advanced disease. `feed` runs the scans of a scenario through a real registry model on ONNX
Runtime (the edge path) and writes every prediction, and optionally the reviewer's label, to a
prediction log, the way a gateway does in service.

Lives outside `sim/fundus/` on purpose: the test registry cache is keyed on that package's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge.backends import ServedModel
from shared.errors import EdgewardError
from shared.monitoring.prediction_log import PredictionStore
from shared.monitoring.summary import feature_summary
from shared.preprocess import resize_for_model, to_tensor
from shared.registry import Manifest, Registry
from sim.fundus.generator import FundusSample, generate_sample
from sim.fundus.shift import ShiftSpec

# Training data uses this defect rate (models.data.DataRecipe); the same rate keeps "same" same.
DEFECT_RATE = 0.35


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    shift: ShiftSpec


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("same", "the training population: nothing shifted", ShiftSpec()),
        Scenario(
            "new-camera",
            "every scan from an unseen handheld camera (Optomed Aurora) with a blue-green cast",
            ShiftSpec(colour_cast=(1.35, 1.0, 0.7), new_camera="optomed-aurora"),
        ),
        Scenario(
            "advanced-disease",
            "a clinic whose patients have more advanced retinopathy (grades 2-4 dominate)",
            ShiftSpec(grade_weights=(0.1, 0.1, 0.3, 0.3, 0.2)),
        ),
        Scenario(
            "new-camera-advanced",
            "the new camera at the clinic with more advanced disease",
            ShiftSpec(
                colour_cast=(1.35, 1.0, 0.7),
                new_camera="optomed-aurora",
                grade_weights=(0.1, 0.1, 0.3, 0.3, 0.2),
            ),
        ),
    )
}


def scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise EdgewardError(f"unknown shift scenario {name!r}; choose one of {sorted(SCENARIOS)}")
    return SCENARIOS[name]


def samples(name: str, n: int, seed: int, size: int = 192) -> Iterator[FundusSample]:
    """`n` gradable scans of the scenario (rejects are retaken at the gateway, never triaged)."""
    shift = scenario(name).shift
    index = 0
    made = 0
    while made < n:
        sample = generate_sample(seed, index, size=size, defect_rate=DEFECT_RATE, shift=shift)
        index += 1
        if sample.labels.quality == "reject":
            continue
        made += 1
        yield sample


def referable_call(manifest: Manifest, probs: np.ndarray) -> tuple[float, int]:
    """(referable probability, 1 if the model calls it referable) for a triage or grader model."""
    if "referable" in manifest.labels:
        p = float(probs[manifest.labels.index("referable")])
        threshold = manifest.thresholds.get("refer", 0.5)
    else:  # the grader: ICDR grade >= 2 is referable
        p = float(probs[2:].sum())
        threshold = manifest.thresholds.get("referable", 0.5)
    return p, int(p >= threshold)


def feed(
    log: PredictionStore,
    registry: Registry | Path,
    model: str,
    name: str,
    *,
    n: int,
    seed: int,
    site: str = "clinic-1",
    label_fraction: float = 1.0,
    batch: int = 16,
) -> int:
    """Log `n` scans of scenario `name` through `model`'s serving version; returns rows written."""
    reg = registry if isinstance(registry, Registry) else Registry(registry)
    served = ServedModel(reg, model, "onnx-cpu")
    spec = served.manifest.preprocess
    rng = np.random.default_rng([seed, 7])
    written = 0
    pending: list[FundusSample] = []

    def flush() -> None:
        nonlocal written
        views = [resize_for_model(s.image_bgr, spec) for s in pending]
        preds = served.predict(np.stack([to_tensor(v, spec) for v in views]))
        for sample, view, pred in zip(pending, views, preds, strict=True):
            scan_id = f"{name}-{seed}-{sample.index}"
            p_ref, call = referable_call(served.manifest, pred.probabilities)
            lab = sample.labels
            written += log.record(
                scan_id,
                tier="edge" if "referable" in served.manifest.labels else "cloud",
                model=model,
                model_version=served.model_id,
                confidence=float(pred.probabilities.max()),
                score=p_ref,
                prediction=call,
                verdict="refer" if call else "no_immediate_concern",
                site=site,
                features=feature_summary(view, pred.features),
                attributes={
                    "camera": lab.camera,
                    "pigmentation": lab.pigmentation,
                    "laterality": lab.laterality,
                    "site": site,
                },
            )
            if rng.random() < label_fraction:
                log.add_label(scan_id, int(lab.referable))
        pending.clear()

    try:
        size = int(served.manifest.data_snapshot.get("render_size", 192))
        scans = samples(name, n, seed, size=size)
        for sample in tqdm(scans, total=n, desc=f"scenario {name}", unit="scan"):
            pending.append(sample)
            if len(pending) == batch:
                flush()
        if pending:
            flush()
    finally:
        served.close()
    return written
