"""The fundus training data as the models see it, read from a rendered dataset on disk.

`sim/datasets/fundus.py` renders it (through the `edgeward.datasets` entry point, or with
`edgeward sim datasets`): `shared.preprocess.resize_for_model` output (uint8) per input size,
the labels, and non-fundus images for the OOD check. Training and evaluation finish each view
with `shared.preprocess.to_tensor`, so every model input is exactly
`shared.preprocess.preprocess(image, spec)`, the function the gateway and the cloud call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.datasets import Dataset, DatasetRequest, ensure, view_name
from shared.preprocess import PreprocessSpec, to_tensor

KIND = "fundus"
QUALITY_CLASSES = ("good", "usable", "reject")
SPLITS = ("train", "val", "test")
LABELS = ("grade", "referable", "quality", "camera", "pigmentation", "laterality", "defects")
NONFUNDUS_PREFIX = "nonfundus-"  # raw images of one kind, for the OOD check
NONFUNDUS_SEEDS = 4  # seeds recipe.seed .. +3


@dataclass(frozen=True)
class DataRecipe:
    """What to render: split sizes, render size and defect rate, all under one seed."""

    n_train: int
    n_val: int
    n_test: int
    render_size: int = 320
    defect_rate: float = 0.35
    seed: int = 0
    # share of scans photographed by a randomised real-camera family (sim.fundus.families);
    # the rest stay as the twin's fleet renders them. The full build sets it (models/plan.py
    # FAMILY_RATE, with the figures that chose it); 0 here keeps a plain recipe plain.
    family_rate: float = 0.0

    def split_range(self, split: str) -> range:
        starts = {"train": 0, "val": self.n_train, "test": self.n_train + self.n_val}
        sizes = {"train": self.n_train, "val": self.n_val, "test": self.n_test}
        return range(starts[split], starts[split] + sizes[split])


@dataclass
class Split:
    """One split at one input size: the models' view plus every label and attribute."""

    images: np.ndarray  # uint8 N x S x S x 3, BGR, resize_for_model output
    grade: np.ndarray
    referable: np.ndarray
    quality: np.ndarray  # index into QUALITY_CLASSES
    camera: np.ndarray
    pigmentation: np.ndarray
    laterality: np.ndarray
    defects: list[str] = field(default_factory=list)  # JSON per image

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, mask: np.ndarray) -> Split:
        idx = np.nonzero(mask)[0]
        return Split(
            self.images[idx],
            self.grade[idx],
            self.referable[idx],
            self.quality[idx],
            self.camera[idx],
            self.pigmentation[idx],
            self.laterality[idx],
            [self.defects[i] for i in idx],
        )

    def groups(self) -> dict[str, np.ndarray]:
        return {
            "camera": self.camera,
            "pigmentation": self.pigmentation,
            "laterality": self.laterality,
        }


def tensors(images: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Model inputs (N x 3 x S x S float32) from cached resize_for_model output."""
    return np.stack([to_tensor(im, spec) for im in images])


def request(recipe: DataRecipe, specs: Sequence[PreprocessSpec]) -> DatasetRequest:
    """What the renderer must draw for `recipe` at these model input sizes."""
    by_size = {spec.size: spec for spec in specs}
    if len(by_size) != len(specs):
        raise ValueError("a fundus dataset needs one preprocessing spec per input size")
    return DatasetRequest(KIND, asdict(recipe), tuple(by_size[s] for s in sorted(by_size)))


def fundus_dataset(
    recipe: DataRecipe,
    specs: Sequence[PreprocessSpec],
    cache_dir: Path,
    workers: int | None = None,
) -> Dataset:
    """The rendered dataset of `recipe` with these views (rendered on first use)."""
    return ensure(request(recipe, specs), cache_dir, workers=workers)


def splits(dataset: Dataset, recipe: DataRecipe, spec: PreprocessSpec) -> dict[str, Split]:
    """{split: Split} of one input size."""
    images = dataset.array(view_name(spec))
    labels = {key: dataset.array(key) for key in LABELS}
    out = {}
    for split in SPLITS:
        r = recipe.split_range(split)
        sl = slice(r.start, r.stop)
        out[split] = Split(
            images[sl],
            labels["grade"][sl].astype(np.int64),
            labels["referable"][sl].astype(bool),
            labels["quality"][sl].astype(np.int64),
            labels["camera"][sl],
            labels["pigmentation"][sl],
            labels["laterality"][sl],
            labels["defects"][sl].tolist(),
        )
    return out


def nonfundus(dataset: Dataset) -> dict[str, np.ndarray]:
    """Raw non-fundus images (uint8 BGR, N x H x W x 3) by kind, for the OOD separation check."""
    return {
        name.removeprefix(NONFUNDUS_PREFIX): dataset.array(name)
        for name in dataset.names()
        if name.startswith(NONFUNDUS_PREFIX)
    }


def load_dataset(
    recipe: DataRecipe,
    specs: Sequence[PreprocessSpec],
    cache_dir: Path,
    workers: int | None = None,
) -> dict[int, dict[str, Split]]:
    """{input size: {split: Split}}, rendered on first use."""
    dataset = fundus_dataset(recipe, specs, cache_dir, workers)
    return {spec.size: splits(dataset, recipe, spec) for spec in specs}
