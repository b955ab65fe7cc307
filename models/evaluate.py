"""`edgeward models evaluate`: a site acceptance test on a clinic's own photographs.

Per image: the edge verdict (the real gateway pipeline, run as `edgeward edge check --measures`),
the cloud grader's probabilities (its registered ONNX file and calibration), the out-of-distribution
scores and the quality findings. Summary: verdict mix, retake rate, AUC with a bootstrap CI,
sensitivity and specificity at the operating point, ECE with a reliability diagram, the review
band's share and a breakdown per source or camera.

Why a subprocess for the edge verdict: `models` may not import `edge` (layers point one way), and
running the gateway's own offline command judges the photographs exactly as a clinic gateway
would, with no second copy of its rules.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.evaluate_mirror import mirrored_edge_lines
from models.evaluate_summary import ImageResult, report_data, summarise
from shared.config.cloud import CloudConfig
from shared.decision import REFERABLE_FROM_GRADE, decide
from shared.errors import EdgewardError
from shared.preprocess import preprocess
from shared.registry import Registry

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm"}
# the edge's out-of-distribution scores among its measures: `triage_energy`, `quality_mahalanobis`
OOD_SUFFIXES = ("_energy", "_mahalanobis")


# ---------------------------------------------------------------- inputs


def collect_images(paths: list[Path]) -> list[Path]:
    """Image files named directly, or found (recursively, sorted) in named folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise EdgewardError(f"{path}: no such file or folder; name image files or a folder")
    if not found:
        raise EdgewardError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {paths}")
    return found


def _parse_referable(value: str) -> bool | None:
    """`yes`/`1`/`true` -> True, `no ...`/`0`/`false` -> False, anything else unknown."""
    v = value.strip().lower()
    if v.startswith(("yes", "true", "1")):
        return True
    if v.startswith(("no", "false", "0")):
        return False
    return None


@dataclass(frozen=True)
class Label:
    referable: bool | None
    grade: int | None
    source: str


def read_labels(csv_path: Path) -> dict[str, Label]:
    """Labels by resolved file path (and by bare file name as a fallback key).

    Columns: `file` and any of `grade` (ICDR 0-4), `referable` or `referable_dr` (yes/no), and
    `dataset`, `source` or `camera` for the per-source breakdown.
    """
    try:
        with csv_path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise EdgewardError(f"{csv_path}: cannot read the labels CSV: {exc.strerror}") from None
    if not rows or "file" not in rows[0]:
        raise EdgewardError(
            f"{csv_path}: a labels CSV needs a `file` column (and grade or referable); "
            f"found columns {list(rows[0]) if rows else 'none'}"
        )
    labels: dict[str, Label] = {}
    for n, row in enumerate(rows, start=2):
        grade: int | None = None
        if (row.get("grade") or "").strip():
            try:
                grade = int(row["grade"])
            except ValueError:
                raise EdgewardError(
                    f"{csv_path} line {n}: grade {row['grade']!r} is not an ICDR grade 0-4"
                ) from None
        ref_text = row.get("referable") or row.get("referable_dr") or ""
        referable = _parse_referable(ref_text) if ref_text else None
        if referable is None and grade is not None:
            referable = grade >= REFERABLE_FROM_GRADE
        source = row.get("dataset") or row.get("source") or row.get("camera") or ""
        label = Label(referable, grade, source.strip())
        labels[str((csv_path.parent / row["file"]).resolve())] = label
        labels.setdefault(Path(row["file"]).name, label)
    return labels


# ---------------------------------------------------------------- the two tiers


def edge_judgements(files: list[Path], registry: Path, backend: str | None) -> dict[str, Any]:
    """`edgeward edge check --measures` on every file: its JSON line by resolved path."""
    cmd = [sys.executable, "-m", "shared.cli", "edge", "check", "--measures"]
    cmd += ["--registry", str(registry)]
    if backend:
        cmd += ["--backend", backend]
    cmd += [str(f) for f in files]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EdgewardError(
            f"`edgeward edge check` failed (exit {done.returncode}) on {len(files)} file(s): "
            f"{done.stderr.strip()[-800:]}"
        )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {str(Path(line["file"]).resolve()): line for line in lines}


class GraderScorer:
    """The registered grader's ONNX file + calibration: the cloud tier's probabilities."""

    def __init__(self, registry: Registry, name: str, version: str | None) -> None:
        import onnxruntime as ort

        verified = registry.load(name, version)
        self.manifest = verified.manifest
        self.session = ort.InferenceSession(
            str(verified.path("onnx")), providers=["CPUExecutionProvider"]
        )
        self.thresholds = dict(self.manifest.thresholds)

    def probabilities(self, image_bgr: np.ndarray) -> np.ndarray:
        x = preprocess(image_bgr, self.manifest.preprocess)[None]
        (logits,) = self.session.run(["logits"], {"input": x})
        return np.asarray(self.manifest.probabilities(np.asarray(logits)))[0]

    def band(self, p: float) -> str:
        low = self.thresholds.get("review_low", self.thresholds.get("referable", 0.5))
        high = self.thresholds.get("review_high", self.thresholds.get("referable", 0.5))
        return "below" if p < low else "above" if p >= high else "review"


def _decode(path: Path) -> np.ndarray | None:
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def evaluate_images(
    files: list[Path],
    labels: dict[str, Label],
    registry: Path,
    *,
    grader: str = "fundus-grader",
    grader_version: str | None = None,
    backend: str | None = None,
    mirror: bool = True,
    review_band: tuple[float, float] = CloudConfig.model_fields["review_band"].default,
) -> list[ImageResult]:
    """`review_band`: the cloud's configured band (its default unless given)."""
    edge = edge_judgements(files, registry, backend)
    mirrored: dict[str, Any] = {}
    if mirror:
        mirrored = mirrored_edge_lines(
            files, _decode, lambda paths: edge_judgements(paths, registry, backend)
        )
    scorer = GraderScorer(Registry(registry), grader, grader_version)
    results = []
    for path in files:
        key = str(path.resolve())
        label = labels.get(key) or labels.get(path.name) or Label(None, None, "")
        r = ImageResult(file=str(path), source=label.source or path.parent.name)
        r.label_referable, r.label_grade = label.referable, label.grade
        line = edge.get(key)
        if line is None:
            r.error = "edge check printed no verdict for this file"
        else:
            r.edge_verdict = line["verdict"]
            r.uploaded = bool(line.get("gradable"))
            r.edge_reasons, r.edge_codes = line["reasons"], line["codes"]
            r.edge_referable_probability = line.get("referable_probability")
            measures = line.get("measures", {})
            r.ood_scores = {k: v for k, v in measures.items() if k.endswith(OOD_SUFFIXES)}
            r.quality = {k: v for k, v in measures.items() if not k.endswith(OOD_SUFFIXES)}
        image = _decode(path)
        if image is None:
            r.error = (r.error + "; " if r.error else "") + "grader could not decode the image"
        else:
            probs = scorer.probabilities(image)
            r.grade_probabilities = [round(float(v), 5) for v in probs]
            r.grade = int(np.argmax(probs))
            r.referable_probability = float(probs[REFERABLE_FROM_GRADE:].sum())
            r.grader_band = scorer.band(r.referable_probability)
            if mirror:
                flipped = scorer.probabilities(np.ascontiguousarray(image[:, ::-1]))
                r.referable_probability_mirrored = float(flipped[REFERABLE_FROM_GRADE:].sum())
        final_answer(r, scorer.thresholds, review_band)
        if (twin := mirrored.get(key)) is not None:
            r.edge_verdict_mirrored = twin["verdict"]
            r.edge_referable_probability_mirrored = twin.get("referable_probability")
        results.append(r)
    return results


def final_answer(r: ImageResult, thresholds: dict[str, float], band: tuple[float, float]) -> None:
    """What the clinic is finally told: the edge's verdict for a scan the gateway keeps, the
    cloud's answer (its rule, on this grader's probability and the gateway's codes) for one it
    uploads; nothing where the grader could not read an uploaded scan."""
    if not r.uploaded:
        r.final_verdict = r.edge_verdict
    elif r.referable_probability is not None:
        said = decide(
            r.referable_probability, thresholds, band, r.edge_verdict, edge_codes=r.edge_codes
        )
        r.final_verdict, r.final_reason = said.verdict.value, said.review_reason


# ---------------------------------------------------------------- the command


def run_evaluate(args: argparse.Namespace) -> int:
    from models.build import outdated_champions
    from models.evaluate_report import write_html_report

    for line in outdated_champions(Registry(args.registry)):
        print(f"note: {line}", file=sys.stderr)
    files = collect_images(args.images)
    labels: dict[str, Label] = {}
    if args.labels is not None:
        labels = read_labels(args.labels)
    elif (manifest := _default_labels(args.images)) is not None:
        labels = read_labels(manifest)
    results = evaluate_images(
        files,
        labels,
        args.registry,
        grader=args.model,
        grader_version=args.version,
        backend=args.backend,
        mirror=not args.no_mirror,
    )
    thresholds = GraderScorer(Registry(args.registry), args.model, args.version).thresholds
    data = report_data(results, summarise(results, thresholds))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1))
    html = write_html_report(data, args.out)
    s = data["summary"]
    print(json.dumps({k: v for k, v in s.items() if k not in ("by_source", "reliability")}))
    print(f"report: {html}")
    return 0


def _default_labels(paths: list[Path]) -> Path | None:
    """A folder's own labels: manifest.csv or labels.csv beside its images."""
    if len(paths) == 1 and paths[0].is_dir():
        for name in ("manifest.csv", "labels.csv"):
            if (paths[0] / name).is_file():
                return paths[0] / name
    return None


def add_evaluate_parser(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = cmds.add_parser(
        "evaluate",
        help="site acceptance test: edge verdicts, grader AUC/ECE on a clinic's own photographs",
        description=(
            "Judge a folder (or list) of photographs with the edge pipeline and the grader and "
            "summarise: verdict mix, retake rate, AUC with a bootstrap CI, sensitivity and "
            "specificity at the operating point, ECE with a reliability diagram, review-band "
            "share, per source/camera, and how often each photograph and its mirror image get "
            "the same verdict (models trained on both eyes should not care). Labels: --labels "
            "CSV with `file` and `grade` or "
            "`referable`/`referable_dr` (optional `dataset`/`source`/`camera`); a folder's own "
            "manifest.csv or labels.csv is used when --labels is not given."
        ),
    )
    e.add_argument("images", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    e.add_argument("--labels", type=Path, default=None, metavar="CSV", help="labels CSV")
    e.add_argument("--registry", type=Path, default=Path("registry"), help="registry root")
    e.add_argument("--model", default="fundus-grader", help="grader name (default fundus-grader)")
    e.add_argument("--version", default=None, help="grader version (default: champion)")
    e.add_argument("--backend", default=None, help="edge inference backend (default: auto)")
    e.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results JSON")
    e.add_argument(
        "--no-mirror",
        action="store_true",
        help="skip judging each photograph's mirror image too (halves the time; the report then "
        "lacks the mirror agreement, a label-free sign of photographs the models do not know)",
    )
    e.add_argument(
        "--out",
        type=Path,
        default=Path("out/evaluate"),
        metavar="DIR",
        help="folder for report.html and reliability.png (default out/evaluate)",
    )
    e.set_defaults(handler=run_evaluate)
