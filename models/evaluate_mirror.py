"""Does a model give the same answer on a photograph and on its mirror image?

Left and right eyes are mirror images, and every fundus net is trained with random left/right
flips, so on the twin a net answers a scan and its mirror alike. On photographs from a camera it
does not know, an answer that flips with the picture (one view cleared, the other referred) is
noise, not judgement: the clearest sign that a site's photographs are beyond what the models
learned, and one that needs no labels. The acceptance test judges every photograph twice and
reports how often the two verdicts agree and how far the probabilities move (in log-odds).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from shared.probabilities import log_odds_gap

GAP = "triage_mirror_log_odds_gap"  # the gateway's own measure (edge/clinic/pipeline.py)


class Mirrored(Protocol):
    """The fields of a result that the mirror summary reads (models.evaluate.ImageResult)."""

    edge_verdict: str
    edge_verdict_mirrored: str
    edge_referable_probability: float | None
    edge_referable_probability_mirrored: float | None
    referable_probability: float | None
    referable_probability_mirrored: float | None
    quality: dict[str, float]


def mirror_copies(
    files: Iterable[Path], folder: Path, decode: Callable[[Path], np.ndarray | None]
) -> dict[str, Path]:
    """Lossless PNG mirror images in `folder`, by the original's resolved path.

    A file the decoder cannot read (e.g. DICOM, which `cv2` does not decode) gets no mirror;
    its results then simply lack the mirrored fields.
    """
    out: dict[str, Path] = {}
    for i, path in enumerate(files):
        image = decode(path)
        if image is None:
            continue
        target = folder / f"{i:05d}-{path.stem}.png"
        if cv2.imwrite(str(target), np.ascontiguousarray(image[:, ::-1])):
            out[str(path.resolve())] = target
    return out


def mirrored_edge_lines(
    files: list[Path],
    decode: Callable[[Path], np.ndarray | None],
    judge: Callable[[list[Path]], dict[str, Any]],
) -> dict[str, Any]:
    """The edge check's line for each file's mirror image, by the original's resolved path."""
    with tempfile.TemporaryDirectory(prefix="edgeward-mirror-") as tmp:
        copies = mirror_copies(files, Path(tmp), decode)
        if not copies:
            return {}
        lines = judge(list(copies.values()))
        by_copy = {str(p.resolve()): original for original, p in copies.items()}
        return {by_copy[k]: line for k, line in lines.items() if k in by_copy}


def _median_gap(pairs: list[tuple[float | None, float | None]]) -> float | None:
    gaps = [log_odds_gap(p, q) for p, q in pairs if p is not None and q is not None]
    return float(np.median(gaps)) if gaps else None


def _triage_gap(results: Sequence[Mirrored]) -> float | None:
    """Median move of the triage net's reading of the view when mirrored.

    The gateway records it (`triage_mirror_log_odds_gap`); a triage net scored on the view and
    its mirror averaged gives a mirrored copy the same score by construction, so the two edge
    probabilities would say nothing. Without the record, those probabilities are compared.
    """
    recorded = [r.quality[GAP] for r in results if GAP in r.quality]
    if recorded:
        return float(np.median(recorded))
    pairs = [(r.edge_referable_probability, r.edge_referable_probability_mirrored) for r in results]
    return _median_gap(pairs)


def mirror_summary(results: Sequence[Mirrored]) -> dict[str, Any]:
    """Agreement of the edge verdicts and median log-odds moves of triage and grader."""
    both = [r for r in results if r.edge_verdict and r.edge_verdict_mirrored]
    if not both:
        return {}
    return {
        "mirror_n": len(both),
        "mirror_verdict_agreement": sum(r.edge_verdict == r.edge_verdict_mirrored for r in both)
        / len(both),
        "mirror_triage_log_odds_gap_median": _triage_gap(both),
        "mirror_grader_log_odds_gap_median": _median_gap(
            [(r.referable_probability, r.referable_probability_mirrored) for r in both]
        ),
    }
