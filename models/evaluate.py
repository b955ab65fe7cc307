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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.evaluate_mirror import mirror_summary, mirrored_edge_lines
from models.metrics import auc
from shared.errors import EdgewardError
from shared.preprocess import preprocess
from shared.registry import Registry

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm"}
BOOTSTRAP_DRAWS = 2000
# ICDR: moderate NPDR or worse; models.tasks says the same, but importing it would load torch
# for every `edgeward` command (this module is imported when the CLI registers).
REFERABLE_FROM_GRADE = 2
RELIABILITY_BINS = 10
# the edge's out-of-distribution scores among its measures: `triage_energy`, `quality_mahalanobis`
OOD_SUFFIXES = ("_energy", "_mahalanobis")


@dataclass
class ImageResult:
    """Everything the acceptance test learned about one photograph."""

    file: str
    source: str = ""
    edge_verdict: str = ""
    edge_reasons: list[str] = field(default_factory=list)
    edge_codes: list[str] = field(default_factory=list)
    edge_referable_probability: float | None = None
    referable_probability: float | None = None
    grade: int | None = None
    grade_probabilities: list[float] = field(default_factory=list)
    grader_band: str = ""  # below | review | above: where p falls against the review band
    label_referable: bool | None = None
    label_grade: int | None = None
    ood_scores: dict[str, float] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    error: str = ""
    # the same photograph mirrored left-right (models/evaluate_mirror.py); empty when skipped
    edge_verdict_mirrored: str = ""
    edge_referable_probability_mirrored: float | None = None
    referable_probability_mirrored: float | None = None


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
) -> list[ImageResult]:
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
        if (twin := mirrored.get(key)) is not None:
            r.edge_verdict_mirrored = twin["verdict"]
            r.edge_referable_probability_mirrored = twin.get("referable_probability")
        results.append(r)
    return results


# ---------------------------------------------------------------- summary


def bootstrap_auc_ci(
    scores: np.ndarray, positive: np.ndarray, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of the AUC over resamples that keep both classes."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(draws):
        idx = rng.integers(0, len(scores), len(scores))
        if positive[idx].any() and not positive[idx].all():
            values.append(auc(scores[idx], positive[idx]))
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def reliability(
    p: np.ndarray, positive: np.ndarray, bins: int = RELIABILITY_BINS
) -> dict[str, Any]:
    """Binary ECE of P(referable) and the per-bin (confidence, frequency, count) it is made of."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows, total = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            mean_p, freq = float(p[inside].mean()), float(positive[inside].mean())
            total += inside.mean() * abs(mean_p - freq)
            rows.append({"bin": b, "mean_p": mean_p, "frequency": freq, "n": int(inside.sum())})
    return {"ece": float(total) if len(p) else float("nan"), "bins": rows, "n_bins": bins}


def _verdict_mix(results: list[ImageResult]) -> dict[str, int]:
    mix: dict[str, int] = {}
    for r in results:
        mix[r.edge_verdict or "error"] = mix.get(r.edge_verdict or "error", 0) + 1
    return dict(sorted(mix.items()))


def _group_summary(results: list[ImageResult], thresholds: dict[str, float]) -> dict[str, Any]:
    n = len(results)
    mix = _verdict_mix(results)
    out: dict[str, Any] = {
        "n": n,
        "verdicts": mix,
        "retake_rate": mix.get("retake", 0) / n if n else float("nan"),
        "review_band_share": (
            sum(r.grader_band == "review" for r in results) / n if n else float("nan")
        ),
        **mirror_summary(results),
    }
    labelled = [
        r for r in results if r.label_referable is not None and r.referable_probability is not None
    ]
    out["n_labelled"] = len(labelled)
    if not labelled:
        return out
    p = np.array([r.referable_probability for r in labelled], dtype=np.float64)
    pos = np.array([bool(r.label_referable) for r in labelled])
    healthy = [r for r in labelled if not r.label_referable]
    out["n_referable"] = int(pos.sum())
    out["auc"] = auc(p, pos)
    out["auc_ci95"] = list(bootstrap_auc_ci(p, pos))
    flagged = p >= thresholds.get("referable", 0.5)
    out["sensitivity"] = float(flagged[pos].mean()) if pos.any() else float("nan")
    out["specificity"] = float((~flagged[~pos]).mean()) if (~pos).any() else float("nan")
    out["reliability"] = reliability(p, pos)
    out["ece"] = out["reliability"]["ece"]
    out["edge_all_clear_on_non_referable"] = (
        sum(r.edge_verdict == "no_immediate_concern" for r in healthy) / len(healthy)
        if healthy
        else float("nan")
    )
    out["edge_all_clear_on_referable"] = sum(
        r.edge_verdict == "no_immediate_concern" for r in labelled if r.label_referable
    )
    out["median_p_non_referable"] = float(np.median(p[~pos])) if (~pos).any() else None
    out["median_p_referable"] = float(np.median(p[pos])) if pos.any() else None
    return out


def summarise(results: list[ImageResult], thresholds: dict[str, float]) -> dict[str, Any]:
    summary = _group_summary(results, thresholds)
    summary["thresholds"] = thresholds
    reasons: dict[str, int] = {}
    for r in results:
        for code in set(r.edge_codes):
            reasons[code] = reasons.get(code, 0) + 1
    summary["edge_codes"] = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
    sources = sorted({r.source for r in results})
    summary["by_source"] = {
        s: _group_summary([r for r in results if r.source == s], thresholds) for s in sources
    }
    summary["errors"] = [f"{r.file}: {r.error}" for r in results if r.error]
    return summary


def _clean(value: Any) -> Any:
    """JSON without NaN (strict parsers refuse it): NaN -> null."""
    if isinstance(value, float):
        # significant digits, not decimals: a threshold of 3e-7 must not print as 0.0
        return None if np.isnan(value) else float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def report_data(results: list[ImageResult], summary: dict[str, Any]) -> dict[str, Any]:
    return _clean({"images": [asdict(r) for r in results], "summary": summary})


# ---------------------------------------------------------------- the command


def run_evaluate(args: argparse.Namespace) -> int:
    from models.evaluate_report import write_html_report

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
