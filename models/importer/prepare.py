"""One declaration -> checked artifacts and the manifest fields of a candidate version."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.importer import checks, onnx_graph
from models.importer.declaration import Declaration
from shared.errors import ModelRefusedError
from shared.registry import sha256_file

Progress = Callable[[str], None]
NOISE_SEED = 0


@dataclass
class Prepared:
    """What `register_model` needs, plus the import record for the report."""

    declaration: Declaration
    source: Path
    files: dict[str, Path]
    fields: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _fit_inputs(images: np.ndarray, needed: int) -> np.ndarray:
    """The check photographs, topped up with noise in the preprocessed value range.

    The head is a property of the network, not of the data, so noise is as good as photographs
    for fitting it; the check inputs (the last rows) are kept as photographs where possible.
    """
    rng = np.random.default_rng(NOISE_SEED)
    extra = max(0, needed - len(images))
    noise = rng.uniform(-2.0, 2.0, size=(extra, *images.shape[1:])).astype(np.float32)
    return np.concatenate([noise, images])


def _grader_fields(
    *,
    declaration: Declaration,
    source: Path,
    base: Path,
    onnx_path: Path,
    images: np.ndarray,
    workdir: Path,
    say: Progress,
) -> tuple[dict[str, Path], dict[str, Any], dict[str, Any]]:
    """Grader: fit and verify the CAM head; a TorchScript grader is also exported to ONNX."""
    import torch

    from models.export import export_grader_with_cam
    from models.importer.grader import (
        ImportedGrader,
        build_body,
        fit_head,
        head_record,
        inputs_needed,
    )

    io = {
        "logits": declaration.io.logits,
        "cam_activations": declaration.io.cam_activations,
        "bgr": declaration.preprocess.colour_order == "BGR",
    }
    kind = declaration.format
    body = build_body(kind, source if kind == "torchscript" else onnx_path, io)
    model = f"{source.name}"
    size = declaration.preprocess.input_size
    needed = inputs_needed(body, size)
    weight, bias = fit_head(body, _fit_inputs(images, needed), model)
    say(f"  CAM head: logits = W·GAP(cam_activations) + b holds ({weight.shape[1]} channels)")
    files: dict[str, Path] = {}
    parity: dict[str, Any] = {}
    if kind == "torchscript":
        grader = ImportedGrader(body, weight, bias).eval()
        with torch.no_grad():
            logits = grader(torch.from_numpy(images)).numpy()
        checks.check_outputs({"logits": logits}, declaration, len(images), model)
        path = workdir / f"{declaration.registry_name}.onnx"
        parity = export_grader_with_cam(grader, torch.from_numpy(images), path)
        say(f"  exported to ONNX with cam_activations (parity {parity['max_abs_diff']:.2g})")
        files = {"onnx": path, "torchscript": source}
        parity |= checks.check_references(
            declaration, base, lambda b: grader(torch.from_numpy(b)).detach().numpy(), model
        )
    record = {"io": io, "cam_head": head_record(weight, bias)}
    return files, parity, record


def prepare(
    declaration: Declaration, base: Path, check_files: list[Path], workdir: Path, say: Progress
) -> Prepared:
    """Convert, check and describe one model; raises ModelRefusedError naming what failed."""
    source = (base / declaration.model_file).resolve()
    digest = sha256_file(source)
    say(f"{declaration.registry_name}: {source} ({declaration.format}, sha256 {digest[:12]}…)")
    spec = declaration.preprocess.serving_spec()
    images = checks.load_images(check_files, spec)
    files: dict[str, Path] = {}
    parity: dict[str, Any] = {}
    if declaration.format == "onnx":
        adapted = onnx_graph.adapt(onnx_graph.load_checked(source), declaration, source)
        path = workdir / f"{declaration.registry_name}.onnx"
        onnx_graph.save(adapted, path)
        session = checks.ort_session(path)
        say(f"  ONNX Runtime (CPU) loads it; input {[d for d in session.get_inputs()[0].shape]}")
        out = checks.run_contract(session, images)
        checks.check_outputs(out, declaration, len(images), source.name)
        worst = checks.original_parity(source, declaration, images, out)
        parity = {"max_abs_diff": worst, "n_images": float(len(images)), "tolerance": 1e-4}
        say(
            f"  shapes fit {len(declaration.labels)} labels; adapted graph = original ({worst:.2g})"
        )
        parity |= checks.check_references(
            declaration, base, lambda b: checks.run_contract(session, b)["logits"], source.name
        )
        files = {"onnx": path}
    record: dict[str, Any] = {}
    if declaration.task == "grader":
        more, grader_parity, record = _grader_fields(
            declaration=declaration,
            source=source,
            base=base,
            onnx_path=workdir / f"{declaration.registry_name}.onnx",
            images=images,
            workdir=workdir,
            say=say,
        )
        files |= more
        parity |= grader_parity
    if "reference_pairs" in parity:
        say(f"  {int(parity['reference_pairs'])} declared reference pair(s) reproduced")
    fields = {
        "preprocess": spec,
        "input_shape": ["batch", 3, spec.size, spec.size],
        "labels": list(declaration.labels),
        "temperature": declaration.temperature,
        "thresholds": dict(declaration.thresholds),
        "operating_point": {
            "chosen_by": "the declaring site",
            "thresholds": declaration.thresholds,
        },
        "data_snapshot": {
            "id": f"imported-{digest[:16]}",
            "trained_on": declaration.trained_on or "not declared",
        },
        "parity": {k: float(v) for k, v in parity.items()},
        "extra": {
            "imported": {
                "format": declaration.format,
                "source_file": source.name,
                "source_sha256": digest,
                "declared_preprocess": declaration.preprocess.model_dump(mode="json"),
                "output_kind": declaration.io.output_kind,
                **record,
            }
        },
    }
    return Prepared(declaration, source, files, fields)


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="edgeward-import-"))


def refuse_duplicates(declarations: list[Declaration]) -> None:
    names: list[str] = [d.registry_name for d in declarations]
    tasks: list[str] = [str(d.task) for d in declarations]
    for seen in (names, tasks):
        dup = sorted({x for x in seen if seen.count(x) > 1})
        if dup:
            raise ModelRefusedError(f"more than one declaration imports {dup}; import one each")
