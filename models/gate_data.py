"""The gate calibration set: twin scans at the gateway's own scale, with what the classical gate
said about each, on which the quality net's `reject` threshold is chosen.

In service a scan gets an all-clear only if no classical check rejected or warned AND the quality
net is below its doubt level, so the net only has to protect the rejects the classical gate lets
through. This set tells the build which those are: `sim/datasets/gate.py` renders it (kind
`fundus-gate` under the `edgeward.datasets` entry points; models never imports sim or edge) and
stores per scan the quality label, the classical gate's reject and warning flags at full size and
the quality net's input view as the gateway makes it. Its id follows the gate's code, so changed
classical bounds re-render it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.data import QUALITY_CLASSES
from models.datasets import Dataset, DatasetRequest, ensure, view_name
from shared.preprocess import PreprocessSpec

KIND = "fundus-gate"
GATED_MODEL = "fundus-quality"  # the model whose threshold is chosen on this set
SPLITS = ("calibrate", "test")
LABELS = ("quality", "classical_reject", "classical_warn", "findings", "camera", "defects")
# Gate scans are drawn at scan indices from here up: the training data uses 0 .. n-1 under the
# same seed, so no gate scan is a training scan.
FIRST_INDEX = 1_000_000
REJECT = QUALITY_CLASSES.index("reject")


@dataclass(frozen=True)
class GateRecipe:
    """What to render: split sizes, the gateway-scale render size, a high defect rate."""

    n_calibrate: int
    n_test: int
    render_size: int = 768
    # about half the scans are rejects at 0.9 (the other defective half is mild: usable)
    defect_rate: float = 0.9
    seed: int = 0
    family_rate: float = 0.0  # as the training data's, so the net sees the cameras it learnt
    first_index: int = FIRST_INDEX

    def split_range(self, split: str) -> range:
        starts = {"calibrate": 0, "test": self.n_calibrate}
        sizes = {"calibrate": self.n_calibrate, "test": self.n_test}
        return range(starts[split], starts[split] + sizes[split])


def gate_recipe(quick: bool, seed: int, family_rate: float) -> GateRecipe:
    """The quick build's set is tiny (the threshold is then rough, but the wiring is the same)."""
    if quick:
        return GateRecipe(48, 48, render_size=768, seed=seed, family_rate=family_rate)
    # ~300 rejects per split: recall 0.99 allows 3 unprotected, 0.98 on the test split 6
    return GateRecipe(600, 600, render_size=768, seed=seed, family_rate=family_rate)


@dataclass(frozen=True)
class GateSplit:
    """One split: the quality net's view of each scan, its label and the classical verdict."""

    images: np.ndarray  # uint8 N x S x S x 3 BGR, the gateway's model view
    quality: np.ndarray  # index into QUALITY_CLASSES
    classical_reject: np.ndarray  # bool: a classical check at reject severity
    classical_warn: np.ndarray  # bool: a classical check at warning severity

    def __len__(self) -> int:
        return len(self.images)

    @property
    def reject(self) -> np.ndarray:
        return np.asarray(self.quality == REJECT)

    @property
    def classical(self) -> np.ndarray:
        """Scans the classical gate keeps from an all-clear (a reject or a warning)."""
        return np.asarray(self.classical_reject | self.classical_warn)


def gate_request(recipe: GateRecipe, spec: PreprocessSpec) -> DatasetRequest:
    """What the renderer must draw for `recipe`, viewed as a model of input `spec` sees it."""
    return DatasetRequest(KIND, asdict(recipe), (spec,))


def gate_dataset(
    recipe: GateRecipe, spec: PreprocessSpec, cache_dir: Path, workers: int | None = None
) -> Dataset:
    """The rendered gate set with this view (rendered on first use)."""
    return ensure(gate_request(recipe, spec), cache_dir, workers=workers)


def gate_splits(dataset: Dataset, recipe: GateRecipe, spec: PreprocessSpec) -> dict[str, GateSplit]:
    """{"calibrate": ..., "test": ...}: the threshold is chosen on one, reported on the other."""
    images = dataset.array(view_name(spec))
    quality = dataset.array("quality").astype(np.int64)
    rejects = dataset.array("classical_reject").astype(bool)
    warns = dataset.array("classical_warn").astype(bool)
    out = {}
    for split in SPLITS:
        r = recipe.split_range(split)
        sl = slice(r.start, r.stop)
        out[split] = GateSplit(images[sl], quality[sl], rejects[sl], warns[sl])
    return out


@dataclass(frozen=True)
class GateSet:
    """Both splits and the record the model's manifest keeps of the set (`extra.gate_set`)."""

    calibrate: GateSplit
    test: GateSplit
    snapshot: dict[str, Any]


def load_gate(
    recipe: GateRecipe, spec: PreprocessSpec, cache_dir: Path, workers: int | None = None
) -> GateSet:
    """The gate set of `recipe` in this view, rendered on first use."""
    dataset = gate_dataset(recipe, spec, cache_dir, workers)
    parts = gate_splits(dataset, recipe, spec)
    return GateSet(parts["calibrate"], parts["test"], dataset.snapshot)
