"""`edgeward models import`: check, register, evaluate and (if the bar is met) promote."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.evaluate import collect_images
from models.importer import acceptance
from models.importer.declaration import AcceptanceBar, Declaration, load_bar, load_declaration
from models.importer.prepare import Progress, new_workdir, prepare, refuse_duplicates
from models.register import register_model
from shared.errors import EdgewardError
from shared.registry import Manifest, Registry

CHECK_IMAGES = 8  # photographs each model is run on before it is registered
TWIN_IMAGES = 60
TWIN_SEED = 7919  # not a training seed: the twin sample is new to every model
TWIN_SIZE = 384


@dataclass
class ImportResult:
    """What happened, for the report and the exit status."""

    candidates: list[Manifest]
    summary: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    report: str = ""


def render_twin_sample(folder: Path, n: int = TWIN_IMAGES, say: Progress = print) -> Path:
    """Photographs from the digital twin with labels.csv (`edgeward sim fundus`, a subprocess:
    models may not import sim)."""
    say(f"rendering {n} twin photographs (seed {TWIN_SEED}) into {folder}")
    cmd = [sys.executable, "-m", "shared.cli", "sim", "fundus", "--n", str(n)]
    cmd += ["--seed", str(TWIN_SEED), "--size", str(TWIN_SIZE), "--out", str(folder)]
    cmd += ["--overwrite"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EdgewardError(
            f"`edgeward sim fundus` failed (exit {done.returncode}); pass --images FOLDER with "
            f"your own labelled photographs instead: {done.stderr.strip()[-600:]}"
        )
    return folder


def _labels_for(images: list[Path], labels: Path | None) -> Path | None:
    if labels is not None:
        return labels
    if len(images) == 1 and images[0].is_dir():
        for name in ("manifest.csv", "labels.csv"):
            if (images[0] / name).is_file():
                return images[0] / name
    return None


def run_import(
    declaration_paths: list[Path],
    registry_root: Path,
    *,
    images: list[Path] | None = None,
    labels: Path | None = None,
    bar_path: Path | None = None,
    promote: bool = False,
    out: Path = Path("out/import"),
    json_path: Path | None = None,
    say: Progress = print,
) -> ImportResult:
    """Import every declared model as a candidate, evaluate them together, promote if met."""
    if promote and bar_path is None:
        raise EdgewardError(
            "--promote needs the site's acceptance bar: pass --bar FILE (see "
            "deploy/import/acceptance.yaml)"
        )
    loaded = [load_declaration(p) for p in declaration_paths]
    declarations: list[Declaration] = [d for d, _ in loaded]
    refuse_duplicates(declarations)
    bar: AcceptanceBar | None = load_bar(bar_path) if bar_path is not None else None
    registry = Registry(registry_root)
    if images is None:
        images = [render_twin_sample(out / "twin-sample", say=say)]
    files = collect_images(images)
    labels_csv = _labels_for(images, labels)
    workdir = new_workdir()
    try:
        prepared = [
            prepare(d, base, files[:CHECK_IMAGES], workdir, say, site_files=files)
            for d, base in loaded
        ]
        candidates = []
        for p in prepared:
            manifest = register_model(
                registry, p.declaration.registry_name, p.declaration.task, p.files, p.fields
            )
            candidates.append(manifest)
            say(f"registered {manifest.model_id} as a candidate")
        say(f"evaluating on {len(files)} image(s) with the candidates in place of the champions")
        data = acceptance.evaluate(
            registry=registry,
            candidates=candidates,
            images=files,
            labels_csv=labels_csv,
            scratch=workdir / "scratch-registry",
            out=out,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(data, indent=1))
    summary = data["summary"]
    result = ImportResult(candidates, summary=summary, report=data["html"])
    metrics = acceptance.metrics_of(summary)
    failures = None if bar is None else acceptance.failed_bars(summary, bar)
    for i, manifest in enumerate(candidates):
        point = {
            **manifest.operating_point,
            "evaluated_on": [str(p) for p in images],
            "acceptance": acceptance.acceptance_record(bar_path, failures),
        }
        updated = manifest.model_copy(update={"metrics": metrics, "operating_point": point})
        registry.save(updated)
        candidates[i] = updated
    if failures is None:
        say("no --bar given: candidates registered and evaluated, not checked against a bar")
        return result
    result.failures = failures
    if result.failures:
        say("acceptance bar NOT met, so nothing is promoted:")
        for failure in result.failures:
            say(f"  {failure}")
        return result
    say(f"acceptance bar in {bar_path} met")
    if promote:
        for manifest in candidates:
            promoted = registry.set_stage(
                manifest.name,
                manifest.version,
                "champion",
                reason=f"imported; met the acceptance bar in {bar_path}",
            )
            result.promoted.append(promoted.model_id)
            say(f"promoted {promoted.model_id} to champion")
    return result


def print_summary(result: ImportResult) -> None:
    keys = ("n", "n_labelled", "auc", "ece", "sensitivity", "specificity", "retake_rate")
    print(json.dumps({k: result.summary.get(k) for k in keys}))
    print(f"report: {result.report}")
