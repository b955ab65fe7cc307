"""`edgeward models build` hook: read the rendered frames, train, export (with parity), register,
promote."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.counter.data import counter_data, counter_plan
from models.counter.model import INPUT_SIZE
from models.counter.train import evaluate, to_tensor, train
from models.export import export_onnx
from models.recipe_record import BUILT_REASON, RECORD_KEY
from models.register import register_model
from shared.preprocess import PreprocessSpec
from shared.registry import Manifest, Registry

NAME = "traffic-counter"
OUTPUT = "counts"
# What `shared.counter_input.counter_input` does: resize, RGB, 0..1, no crop, no shift.
SPEC = PreprocessSpec(size=INPUT_SIZE, crop_to_fov=False, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def build_counter(
    registry: Registry, quick: bool, seed: int, cache_dir: Path, record: dict[str, Any]
) -> Manifest:
    """Build, register and promote a new champion `traffic-counter`."""
    started = time.monotonic()
    the_plan = counter_plan(quick, seed)
    epochs = the_plan.epochs
    train_data, train_snap = counter_data(the_plan.train, cache_dir)
    test_data, test_snap = counter_data(the_plan.test, cache_dir)
    both = f"{train_snap['id']}+{test_snap['id']}"
    model = train(train_data, epochs=epochs, seed=seed)
    metrics, subgroups = evaluate(model, test_data)
    with tempfile.TemporaryDirectory(prefix="edgeward-counter-") as tmp:
        onnx_path = Path(tmp) / "traffic-counter.onnx"
        parity = export_onnx(model, to_tensor(test_data.images[:64]), onnx_path, [OUTPUT])
        weights = Path(tmp) / "traffic-counter.pt"
        torch.save(model.state_dict(), weights)
        manifest = register_model(
            registry,
            NAME,
            "counter",
            {"onnx": onnx_path, "pytorch": weights},
            {
                "preprocess": SPEC,
                "input_shape": ["batch", 3, INPUT_SIZE, INPUT_SIZE],
                "labels": ["queue", "approaching"],
                # SUMO's definition of a queued vehicle, which the labels follow
                "thresholds": {"halting_speed_ms": 0.1},
                "operating_point": {
                    "camera_range_m": 60.0,
                    "frame_px": the_plan.train.size,
                    "output": OUTPUT,
                    "note": "regression: counts per approach, clipped at 0 by the edge",
                },
                "metrics": {k: round(v, 4) for k, v in metrics.items()},
                "subgroup_metrics": subgroups,
                "subgroup_gap": {
                    "queue_mae": round(
                        float(np.ptp([m["queue_mae"] for m in subgroups["condition"].values()])),
                        4,
                    )
                },
                "data_snapshot": {
                    "id": hashlib.sha256(both.encode()).hexdigest()[:16],
                    "generator": train_snap["generator"],
                    "generator_version": train_snap["generator_version"],
                    "n_train": the_plan.train.n,
                    "n_test": the_plan.test.n,
                    "seed": seed,
                    "train": train_snap,
                    "test": test_snap,
                },
                "parity": parity,
                "extra": {
                    RECORD_KEY: record,
                    # what `edgeward bench models` rebuilds as its PyTorch-eager reference
                    "architecture": {"name": "counter_net", "kwargs": {"width": model.width}},
                    "epochs": epochs,
                    "build_s": round(time.monotonic() - started, 1),
                },
            },
        )
    promoted = registry.set_stage(NAME, manifest.version, "champion", reason=BUILT_REASON)
    print(
        f"{promoted.model_id} -> champion: queue MAE {metrics['queue_mae']:.2f}, "
        f"approaching MAE {metrics['approaching_mae']:.2f} vehicles per frame "
        f"({time.monotonic() - started:.0f} s)"
    )
    return promoted
