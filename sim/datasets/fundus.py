"""Fundus training data: synthetic scans from sim.fundus, as each model input size sees them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, TypeVar

import numpy as np

from models.data import LABELS, NONFUNDUS_PREFIX, NONFUNDUS_SEEDS, QUALITY_CLASSES, DataRecipe
from models.datasets import DatasetRequest, view_name
from models.progress import bar
from shared.preprocess import PreprocessSpec, resize_for_model
from sim.datasets.code import source_key
from sim.fundus.defects import apply_jpeg
from sim.fundus.families import FAMILIES, HELD_OUT_FAMILY, photograph, randomised
from sim.fundus.generator import GENERATOR_VERSION, FundusLabels, generate_sample
from sim.fundus.nonfundus import nonfundus_images

# seed, index, render size, defect rate, family rate, training split?, views
_Job = tuple[int, int, int, float, float, bool, tuple[PreprocessSpec, ...]]
MIN_FRAME = 400  # the smallest frame a camera family may have
J = TypeVar("J")


def _acquire(
    seed: int, index: int, image: np.ndarray, camera: str, train: bool
) -> tuple[np.ndarray, str]:
    """The render photographed by a randomised camera family: (image, family name).

    The training split never sees HELD_OUT_FAMILY; validation and test do, so calibration and
    the OOD thresholds are fitted on a shifted camera. Its own random stream: the render, and
    so every label, is the same with or without the family.
    """
    rng = np.random.default_rng([seed, index, 4343])
    names = [n for n in FAMILIES if not (train and n == HELD_OUT_FAMILY)]
    base = FAMILIES[names[int(rng.integers(len(names)))]]
    side = image.shape[0]
    frame = max(MIN_FRAME, round(side * rng.uniform(1.3, 2.0)))
    return photograph(image, camera, randomised(base, rng, frame), rng), base.name


def photographed(
    seed: int,
    index: int,
    *,
    render_size: int,
    defect_rate: float,
    family_rate: float,
    train: bool,
) -> tuple[np.ndarray, FundusLabels, str]:
    """One twin scan as a camera took it: (image, labels, camera or family name)."""
    sample = generate_sample(seed, index, size=render_size, defect_rate=defect_rate)
    lab = sample.labels
    image, camera = sample.image_bgr, str(lab.camera)
    # a share stays as the bare twin renders it (the fleet the demo and the tests photograph)
    if np.random.default_rng([seed, index, 4242]).random() < family_rate:
        jpeg = lab.defects.get("jpeg_compression", 0.0)
        if jpeg > 0:
            # A camera writes its JPEG last: reframing a compressed render would smooth the
            # blocks away and teach the quality net rejects it cannot see. Same scan without
            # that step (same streams, same pixels otherwise), photographed, then compressed.
            plain = {k: v for k, v in lab.defects.items() if k != "jpeg_compression"}
            image = generate_sample(
                seed, index, size=render_size, defect_rate=defect_rate, defects=plain
            ).image_bgr
        image, camera = _acquire(seed, index, image, camera, train)
        if jpeg > 0:
            image = apply_jpeg(image, jpeg)
    return image, lab, camera


def _render_one(job: _Job) -> dict[str, Any]:
    seed, index, render_size, defect_rate, family_rate, train, specs = job
    image, lab, camera = photographed(
        seed,
        index,
        render_size=render_size,
        defect_rate=defect_rate,
        family_rate=family_rate,
        train=train,
    )
    return {
        "views": {view_name(s): resize_for_model(image, s) for s in specs},
        "grade": int(lab.grade),
        "referable": bool(lab.referable),
        "quality": QUALITY_CLASSES.index(lab.quality),
        "camera": camera,
        "pigmentation": str(lab.pigmentation),
        "laterality": str(lab.laterality),
        "defects": json.dumps(dict(lab.defects), sort_keys=True),
    }


def rows(
    render: Callable[[J], dict[str, Any]], jobs: Sequence[J], workers: int, what: str
) -> Iterator[dict[str, Any]]:
    """render(job) for every job, in order, in `workers` processes, with a progress bar."""
    desc = f"render {len(jobs)} {what}"
    if workers <= 1:
        yield from bar(map(render, jobs), total=len(jobs), desc=desc, unit="img")
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        yield from bar(pool.map(render, jobs, chunksize=16), total=len(jobs), desc=desc, unit="img")


def stacked(
    rendered: Sequence[dict[str, Any]], labels: Sequence[str], views: Sequence[PreprocessSpec]
) -> dict[str, np.ndarray]:
    """Rendered rows as arrays: one per label, one per model view (`rows` output, in order)."""
    arrays = {key: np.array([r[key] for r in rendered]) for key in labels}
    for spec in views:
        arrays[view_name(spec)] = np.stack([r["views"][view_name(spec)] for r in rendered])
    return arrays


class FundusRenderer:
    """Renders a `models.data.DataRecipe`: every scan once, resized for each requested view."""

    def generator(self) -> dict[str, str]:
        return {
            "generator": "sim.fundus",
            "generator_version": str(GENERATOR_VERSION),
            "code": source_key(
                "sim.fundus.generator", "sim.fundus.families", "sim.fundus.nonfundus", __name__
            ),
        }

    def render(self, request: DatasetRequest, *, workers: int) -> dict[str, np.ndarray]:
        recipe = DataRecipe(**request.params)
        total = recipe.n_train + recipe.n_val + recipe.n_test
        train = recipe.split_range("train")
        jobs = [
            (
                recipe.seed,
                i,
                recipe.render_size,
                recipe.defect_rate,
                recipe.family_rate,
                i in train,
                request.views,
            )
            for i in range(total)
        ]
        rendered = list(rows(_render_one, jobs, workers, "fundus scans"))
        arrays = stacked(rendered, LABELS, request.views)
        by_kind: dict[str, list[np.ndarray]] = {}
        for s in range(recipe.seed, recipe.seed + NONFUNDUS_SEEDS):
            for kind, image in nonfundus_images(s, recipe.render_size).items():
                by_kind.setdefault(kind, []).append(image)
        arrays |= {f"{NONFUNDUS_PREFIX}{k}": np.stack(v) for k, v in by_kind.items()}
        return arrays


RENDERER = FundusRenderer()
