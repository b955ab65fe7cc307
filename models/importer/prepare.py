"""One declaration -> checked artifacts and the manifest fields of a candidate version."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.export import OPSET
from models.importer import checks, onnx_graph
from models.importer.declaration import Declaration
from shared.errors import ModelRefusedError
from shared.registry import sha256_file

Progress = Callable[[str], None]
NOISE_SEED = 0
OOD_MIN_IMAGES = 20  # half fit the mean and precision, half the thresholds


@dataclass
class Prepared:
    """What `register_model` needs, plus the import record for the report."""

    declaration: Declaration
    source: Path
    files: dict[str, Path]
    fields: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _smooth_fields(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Random low-frequency colour fields [n, 3, size, size] of random contrast and offset."""
    out = []
    for _ in range(n):
        grid = int(rng.integers(2, 17))
        low = rng.normal(0.0, 1.0, (grid, grid, 3)).astype(np.float32)
        field = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        field = field * rng.uniform(0.2, 2.0) + rng.normal(0.0, 0.7, 3)
        out.append(field.transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def _fit_inputs(images: np.ndarray, needed: int) -> np.ndarray:
    """The check photographs last, preceded by varied inputs in the preprocessed value range.

    The head is a property of the network, not of the data, so made-up inputs fit it as well
    as photographs, provided their pooled activations vary: white noise pools to nearly the
    same vector every time (an ill-conditioned fit, measured: relative error 2e-3 on real
    photographs), so these are the photographs at random contrast and offset plus smooth
    random colour fields (error 6e-8).
    """
    rng = np.random.default_rng(NOISE_SEED)
    n = max(0, needed - len(images))
    pick = rng.integers(0, len(images), n)
    contrast = rng.uniform(0.3, 1.7, (n, 1, 1, 1)).astype(np.float32)
    offset = rng.normal(0.0, 0.5, (n, 3, 1, 1)).astype(np.float32)
    blend = rng.uniform(0.0, 1.0, (n, 1, 1, 1)).astype(np.float32)
    made = images[pick] * contrast + offset + _smooth_fields(rng, n, images.shape[-1]) * blend
    return np.concatenate([made.astype(np.float32), images])


def _cam_head(
    declaration: Declaration, onnx_path: Path, images: np.ndarray, say: Progress
) -> dict[str, Any]:
    """Fit and verify the grader's GAP + linear head on its adapted graph (Grad-CAM needs it)."""
    from models.importer.grader import OnnxBody, fit_head, head_record, inputs_needed

    body = OnnxBody(onnx_path)
    needed = inputs_needed(body, declaration.preprocess.input_size)
    weight, bias = fit_head(body, _fit_inputs(images, needed), onnx_path.name)
    say(f"  CAM head: logits = W·GAP(cam_activations) + b holds ({weight.shape[1]} channels)")
    return {"cam_head": head_record(weight, bias)}


def torchscript_to_onnx(
    declaration: Declaration, source: Path, images: np.ndarray, workdir: Path, say: Progress
) -> tuple[Declaration, Path, float]:
    """The TorchScript grader as an ONNX graph with positional output names, parity-checked.

    Returns the declaration rewritten for that graph, its path and the largest difference
    between TorchScript and ONNX Runtime on the check images. (A loaded TorchScript module
    cannot be traced inside a wrapper, so the cloud could not re-export it; as ONNX it can run.)
    """
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
            scripted = torch.jit.load(str(source), map_location="cpu").eval()
    except (RuntimeError, ValueError) as exc:
        raise ModelRefusedError(f"{source}: not a TorchScript file torch can load: {exc}") from None
    # the model's own channel order: the flip from RGB is added to the graph later, as for ONNX
    own = np.ascontiguousarray(
        images[:, ::-1] if declaration.preprocess.colour_order == "BGR" else images
    )
    x = torch.from_numpy(own)
    with torch.no_grad():
        out = scripted(x)
    if not isinstance(out, tuple | list) or not all(isinstance(t, torch.Tensor) for t in out):
        raise ModelRefusedError(
            f"{source}: forward returns {type(out).__name__}; a TorchScript grader returns a "
            "tuple of tensors holding the logits and the CAM layer's activations (io.logits, "
            "io.cam_activations are positions in it)"
        )
    names = [f"output{i}" for i in range(len(out))]
    positions = {
        role: int(getattr(declaration.io, role))
        for role in ("logits", "cam_activations", "features")
        if getattr(declaration.io, role) is not None
    }
    for role, at in positions.items():
        if not 0 <= at < len(out):
            raise ModelRefusedError(
                f"{source}: io.{role} is position {at}, but forward returns {len(out)} tensors"
            )
    path = workdir / f"{source.stem}-torchscript.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            scripted,
            (x[:2],),
            str(path),
            dynamo=False,
            input_names=["torchscript_input"],
            output_names=names,
            dynamic_axes={n: {0: "batch"} for n in ["torchscript_input", *names]},
            opset_version=OPSET,
        )
    got = checks.ort_session(path).run(names, {"torchscript_input": own})
    worst = max(float(np.abs(t.numpy() - g).max()) for t, g in zip(out, got, strict=True))
    if not worst <= checks.PARITY_TOLERANCE:
        raise ModelRefusedError(
            f"{source}: its ONNX conversion differs from TorchScript by {worst:.3g} (tolerance "
            f"{checks.PARITY_TOLERANCE:g}); export the grader to ONNX yourself and import that"
        )
    say(f"  TorchScript converted to ONNX (parity {worst:.2g} on {len(images)} images)")
    renamed = {role: f"output{at}" for role, at in positions.items()}
    io = declaration.io.model_copy(update={"input": "torchscript_input", **renamed})
    return declaration.model_copy(update={"format": "onnx", "io": io}), path, worst


def _ood_reference(
    declaration: Declaration, session: Any, files: list[Path], say: Progress
) -> dict[str, Any]:
    """The gateway's OOD reference (models/ood.py) from the site's photographs, for an edge net.

    The factory fits it on its training split; an imported net brings no training data, so the
    site's evaluation photographs stand in: every other image gives the mean and precision,
    the rest the thresholds. Without a `features` output or enough photographs the gateway's
    Mahalanobis and energy signals stay off for this net, and the import says so.
    """
    from models.ood import fit_reference

    name = declaration.registry_name
    if declaration.task == "grader":
        return {}
    if declaration.io.features is None:
        say(f"  no io.features: the gateway's out-of-distribution guard is off for {name}")
        return {}
    if len(files) < OOD_MIN_IMAGES:
        say(
            f"  {len(files)} photographs < {OOD_MIN_IMAGES}: no out-of-distribution reference "
            f"for {name} (pass more with --images)"
        )
        return {}
    batch = checks.load_images(files, declaration.preprocess.serving_spec())
    out = checks.run_contract(session, batch)
    features = out["features"].astype(np.float64)
    logits = out["logits"].astype(np.float64)
    reference = fit_reference(features[::2], features[1::2], logits[1::2])
    reference["fitted_on"] |= {"source": "the import's evaluation photographs"}
    say(f"  out-of-distribution reference fitted on {len(files)} site photographs")
    return {"ood": reference}


def prepare(
    declaration: Declaration,
    base: Path,
    check_files: list[Path],
    workdir: Path,
    say: Progress,
    *,
    site_files: list[Path] | None = None,
) -> Prepared:
    """Convert, check and describe one model; raises ModelRefusedError naming what failed.

    `check_files` are run through the model before anything else; `site_files` (default: the
    same) are the photographs an edge net's out-of-distribution reference is fitted on.
    """
    source = (base / declaration.model_file).resolve()
    digest = sha256_file(source)
    say(f"{declaration.registry_name}: {source} ({declaration.format}, sha256 {digest[:12]}…)")
    spec = declaration.preprocess.serving_spec()
    images = checks.load_images(check_files, spec)
    files: dict[str, Path] = {}
    as_onnx, onnx_source, conversion = declaration, source, 0.0
    if declaration.format == "torchscript":
        as_onnx, onnx_source, conversion = torchscript_to_onnx(
            declaration, source, images, workdir, say
        )
        files["torchscript"] = source
    adapted = onnx_graph.adapt(onnx_graph.load_checked(onnx_source), as_onnx, source)
    path = workdir / f"{declaration.registry_name}.onnx"
    onnx_graph.save(adapted, path)
    files["onnx"] = path
    session = checks.ort_session(path)
    say(f"  ONNX Runtime (CPU) loads it; input {list(session.get_inputs()[0].shape)}")
    out = checks.run_contract(session, images)
    checks.check_outputs(out, declaration, len(images), source.name)
    worst = max(conversion, checks.original_parity(onnx_source, as_onnx, images, out))
    parity: dict[str, float] = {
        "max_abs_diff": worst,
        "n_images": float(len(images)),
        "tolerance": checks.PARITY_TOLERANCE,
    }
    say(f"  shapes fit {len(declaration.labels)} labels; graph parity {worst:.2g}")
    parity |= checks.check_references(
        declaration, base, lambda b: checks.run_contract(session, b)["logits"], source.name
    )
    if "reference_pairs" in parity:
        say(f"  {int(parity['reference_pairs'])} declared reference pair(s) reproduced")
    record = _cam_head(declaration, path, images, say) if declaration.task == "grader" else {}
    ood = _ood_reference(declaration, session, site_files or check_files, say)
    thresholds = dict(declaration.thresholds)
    fields = {
        "preprocess": spec,
        "input_shape": ["batch", 3, spec.size, spec.size],
        "labels": list(declaration.labels),
        "temperature": declaration.temperature,
        "calibration": dict(declaration.calibration),
        "thresholds": thresholds,
        "operating_point": {"chosen_by": "the declaring site", "thresholds": thresholds},
        "data_snapshot": {
            "id": f"imported-{digest[:16]}",
            "trained_on": declaration.trained_on or "not declared",
        },
        "parity": parity,
        "extra": {
            "imported": {
                "format": declaration.format,
                "source_file": source.name,
                "source_sha256": digest,
                "declared_preprocess": declaration.preprocess.model_dump(mode="json"),
                "declared_io": declaration.io.model_dump(mode="json"),
                **record,
            },
            **ood,
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
