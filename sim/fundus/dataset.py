"""A directory of synthetic scans plus `labels.csv`, the format the model factory reads."""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from shared.errors import EdgewardError
from sim.fundus.dicom import SYNTAXES, check_keywords, write_dicom
from sim.fundus.families import FAMILY_NAMES, photograph
from sim.fundus.families import family as camera_family
from sim.fundus.generator import GENERATOR_VERSION, FundusSample, generate_sample

FORMATS = {"png": ".png", "jpeg": ".jpg", "dicom": ".dcm"}
LABEL_COLUMNS = (
    "file",
    "grade",
    "referable",
    "quality",
    "defects",
    "camera",
    "pigmentation",
    "laterality",
    "seed",
    "index",
    "generator_version",
)


def format_defects(defects: dict[str, float]) -> str:
    """`defocus:0.620;haze_flare:0.300` (sorted by name; empty for a clean scan)."""
    return ";".join(f"{k}:{v:.3f}" for k, v in sorted(defects.items()))


def parse_defects(text: str) -> dict[str, float]:
    """Inverse of format_defects."""
    if not text:
        return {}
    return {k: float(v) for k, v in (part.split(":") for part in text.split(";"))}


def label_row(sample: FundusSample, file: str) -> dict[str, Any]:
    lab = sample.labels
    return {
        "file": file,
        "grade": lab.grade,
        "referable": int(lab.referable),
        "quality": lab.quality,
        "defects": format_defects(lab.defects),
        "camera": lab.camera,
        "pigmentation": lab.pigmentation,
        "laterality": lab.laterality,
        "seed": sample.seed,
        "index": sample.index,
        "generator_version": GENERATOR_VERSION,
    }


# Lossless but quick: the "up" filter with Huffman-only coding halves the encode time of zlib
# level 1 for the same file size (~1 MB at 1024 px).
_PNG_FAST = [
    cv2.IMWRITE_PNG_COMPRESSION, 1,
    cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
    cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
]  # fmt: skip


def write_image(
    path: Path,
    sample: FundusSample,
    fmt: str,
    dicom_syntax: str = "explicit",
    omit: Collection[str] = (),
) -> None:
    if fmt == "dicom":
        write_dicom(path, sample, syntax=dicom_syntax, omit=omit)
        return
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpeg" else _PNG_FAST
    if not cv2.imwrite(str(path), sample.image_bgr, params):
        raise EdgewardError(f"could not write {path}: check the disk and permissions")


def write_dataset(  # noqa: PLR0917 (the documented signature)
    out: Path,
    n: int,
    seed: int,
    fmt: str = "png",
    size: int = 1024,
    defect_rate: float = 0.2,
    *,
    dicom_syntax: str = "explicit",
    omit: Collection[str] = (),
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 1,
    family: str | None = None,
    **kw: Any,
) -> Path:
    """Write n scans and DIR/labels.csv (paths relative to DIR); returns the labels.csv path.

    `kw` goes to generate_sample (grade, defects, camera, pigmentation, shift). With workers > 1
    scans are made in that many processes; the files are identical either way. `family` (a
    name of sim.fundus.families, or "all" to take turns) photographs each render as that camera
    family would; its name is then the `camera` column.
    """
    if fmt not in FORMATS:
        raise EdgewardError(
            f"image format {fmt!r} is not supported; use one of {', '.join(FORMATS)}"
        )
    if fmt != "dicom" and omit:
        raise EdgewardError("leaving DICOM tags out (omit) only applies to the dicom format")
    if dicom_syntax not in SYNTAXES:
        raise EdgewardError(
            f"DICOM syntax {dicom_syntax!r} is not supported; use one of {', '.join(SYNTAXES)}"
        )
    check_keywords(omit, omitting=True)
    if family is not None:
        if fmt == "dicom":
            raise EdgewardError(f"camera family {family!r} applies to png/jpeg, not dicom")
        if family != "all":
            camera_family(family)  # an unknown name fails before anything is written
    if n < 1:
        raise EdgewardError(f"number of scans {n} must be at least 1")
    if not 1 <= workers <= 64:
        raise EdgewardError(f"workers {workers} must be within 1-64")
    generate_sample(seed, 0, size=64, defect_rate=defect_rate, **kw)  # bad kw fail before writing
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgewardError(f"output {out} is a file, not a directory; choose a directory")
    labels = out / "labels.csv"
    if labels.exists() and not overwrite:
        raise EdgewardError(
            f"{labels} already exists; choose an empty directory, or replace it with --overwrite "
            "(overwrite=True in Python)"
        )
    (out / "images").mkdir(parents=True, exist_ok=True)
    job = partial(
        _write_one, out=out, seed=seed, fmt=fmt, size=size, defect_rate=defect_rate,
        dicom_syntax=dicom_syntax, omit=tuple(omit), kw=kw, family=family,
    )  # fmt: skip
    tmp = labels.with_suffix(".csv.partial")
    try:
        with tmp.open("w", newline="") as fh, ExitStack() as stack:
            writer = csv.DictWriter(fh, fieldnames=LABEL_COLUMNS)
            writer.writeheader()
            rows: Iterable[dict[str, Any]]
            if workers > 1:
                pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
                rows = pool.map(job, range(n), chunksize=4)  # in index order
            else:
                rows = map(job, range(n))
            for row in tqdm(rows, total=n, desc="fundus scans", unit="img", disable=not progress):
                writer.writerow(row)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # Renamed only when complete, so a half-written set is never mistaken for a finished one.
    tmp.replace(labels)
    return labels


def _write_one(
    index: int,
    *,
    out: Path,
    seed: int,
    fmt: str,
    size: int,
    defect_rate: float,
    dicom_syntax: str,
    omit: tuple[str, ...],
    kw: dict[str, Any],
    family: str | None = None,
) -> dict[str, Any]:
    """Generate and write one scan (runs in a worker process when workers > 1)."""
    sample = generate_sample(seed, index, size=size, defect_rate=defect_rate, **kw)
    rel = f"images/fundus_{seed}_{index:06d}{FORMATS[fmt]}"
    camera = sample.labels.camera
    if family is not None:
        name = FAMILY_NAMES[index % len(FAMILY_NAMES)] if family == "all" else family
        rng = np.random.default_rng([seed, index, 4242])  # its own stream: renders stay as they are
        image = photograph(sample.image_bgr, camera, camera_family(name), rng)
        sample = replace(sample, image_bgr=image, labels=replace(sample.labels, camera=name))
    write_image(out / rel, sample, fmt, dicom_syntax, omit)
    return label_row(sample, rel)
