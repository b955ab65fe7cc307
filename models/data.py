"""Training data from the fundus digital twin, rendered once and cached as the models' view.

The cache holds `shared.preprocess.resize_for_model` output (uint8) per input size; training
and evaluation finish it with `shared.preprocess.to_tensor`, so every model input is exactly
`shared.preprocess.preprocess(image, spec)` — the function the gateway and the cloud call.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from shared.preprocess import PreprocessSpec, resize_for_model, to_tensor
from shared.registry import write_json_atomic

QUALITY_CLASSES = ("good", "usable", "reject")
SPLITS = ("train", "val", "test")
CACHE_FORMAT = "1"  # bump when the cache layout or the split rule changes


@dataclass(frozen=True)
class DataRecipe:
    """What to render: split sizes, render size and defect rate, all under one seed."""

    n_train: int
    n_val: int
    n_test: int
    render_size: int = 320
    defect_rate: float = 0.35
    seed: int = 0

    def split_range(self, split: str) -> range:
        starts = {"train": 0, "val": self.n_train, "test": self.n_train + self.n_val}
        sizes = {"train": self.n_train, "val": self.n_val, "test": self.n_test}
        return range(starts[split], starts[split] + sizes[split])


def generator_version() -> str:
    from sim.fundus.generator import GENERATOR_VERSION

    return str(GENERATOR_VERSION)


def snapshot(recipe: DataRecipe) -> dict[str, Any]:
    """The data snapshot record: generator version, parameters, seed, and their hash as id."""
    params = asdict(recipe)
    record = {"generator": "sim.fundus", "generator_version": generator_version(), **params}
    canonical = json.dumps({**record, "cache_format": CACHE_FORMAT}, sort_keys=True)
    return {"id": hashlib.sha256(canonical.encode()).hexdigest()[:16], **record}


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


def _render(args: tuple[int, int, int, float, tuple[PreprocessSpec, ...]]) -> dict[str, Any]:
    seed, index, render_size, defect_rate, specs = args
    from sim.fundus.generator import generate_sample

    sample = generate_sample(seed, index, size=render_size, defect_rate=defect_rate)
    lab = sample.labels
    views = {spec.size: resize_for_model(sample.image_bgr, spec) for spec in specs}
    return {
        "views": views,
        "grade": int(lab.grade),
        "referable": bool(lab.referable),
        "quality": QUALITY_CLASSES.index(lab.quality),
        "camera": str(lab.camera),
        "pigmentation": str(lab.pigmentation),
        "laterality": str(lab.laterality),
        "defects": json.dumps(dict(lab.defects), sort_keys=True),
    }


def _pool_map(jobs: Sequence[Any], workers: int, desc: str) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        for job in tqdm(jobs, desc=desc, unit="img"):
            yield _render(job)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        yield from tqdm(
            pool.map(_render, jobs, chunksize=16), total=len(jobs), desc=desc, unit="img"
        )


def load_dataset(
    recipe: DataRecipe,
    specs: Sequence[PreprocessSpec],
    cache_dir: Path,
    workers: int | None = None,
) -> dict[int, dict[str, Split]]:
    """{input size: {split: Split}}, rendered in parallel on first use and cached as .npz."""
    by_size = {spec.size: spec for spec in specs}
    if len(by_size) != len(specs):
        raise ValueError("load_dataset needs one preprocessing spec per input size")
    sizes = tuple(sorted(by_size))
    snap = snapshot(recipe)
    base = cache_dir / f"fundus-{snap['id']}"
    paths = {s: base / f"view-{s}-{by_size[s].content_hash()}.npz" for s in sizes}
    missing = tuple(s for s, p in paths.items() if not p.exists())
    if missing:
        base.mkdir(parents=True, exist_ok=True)
        total = recipe.n_train + recipe.n_val + recipe.n_test
        wanted = tuple(by_size[s] for s in missing)
        jobs = [
            (recipe.seed, i, recipe.render_size, recipe.defect_rate, wanted) for i in range(total)
        ]
        workers = workers or min(2, os.cpu_count() or 1)
        rows = list(_pool_map(jobs, workers, f"render {total} fundus scans"))
        for s in missing:
            # unique temp name: parallel builds may render the same snapshot at once
            fd, tmp_name = tempfile.mkstemp(dir=base, prefix=f".{paths[s].stem}.", suffix=".npz")
            os.close(fd)
            tmp = Path(tmp_name)
            arrays: dict[str, np.ndarray] = {
                "images": np.stack([r["views"][s] for r in rows]),
                **{
                    key: np.array([r[key] for r in rows])
                    for key in (
                        "grade",
                        "referable",
                        "quality",
                        "camera",
                        "pigmentation",
                        "laterality",
                        "defects",
                    )
                },
            }
            np.savez(tmp, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, paths[s])
        write_json_atomic(base / "snapshot.json", snap)
    out: dict[int, dict[str, Split]] = {}
    for s in sizes:
        with np.load(paths[s]) as z:
            arrays = {k: z[k] for k in z.files}
        out[s] = {}
        for split in SPLITS:
            r = recipe.split_range(split)
            sl = slice(r.start, r.stop)
            out[s][split] = Split(
                arrays["images"][sl],
                arrays["grade"][sl].astype(np.int64),
                arrays["referable"][sl].astype(bool),
                arrays["quality"][sl].astype(np.int64),
                arrays["camera"][sl],
                arrays["pigmentation"][sl],
                arrays["laterality"][sl],
                arrays["defects"][sl].tolist(),
            )
    return out
