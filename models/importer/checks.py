"""The import's checks: the runtime loads it, shapes fit the declaration, outputs are sane,
the adapted graph computes what the original does, and the declared reference pairs hold.

Reference images go through the one decoder (shared/scan_decode.py) and the one preprocessing
(shared/preprocess.py) with the declared spec, exactly as a gateway or the cloud would feed
them: a pair that fails means the declaration does not describe how the model was trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.importer.declaration import Declaration
from shared.errors import ModelRefusedError
from shared.preprocess import PreprocessSpec, preprocess
from shared.scan_decode import ScanDecodeError, decode

PARITY_TOLERANCE = 1e-4
SUM_TOLERANCE = 1e-3


def load_images(files: list[Path], spec: PreprocessSpec) -> np.ndarray:
    """Decoded (shared decoder) and preprocessed (declared spec) images, [N, 3, S, S]."""
    batch = []
    for path in files:
        try:
            image, _ = decode(path.read_bytes(), filename=path.name)
        except (ScanDecodeError, OSError) as exc:
            raise ModelRefusedError(
                f"{path}: cannot decode it for the import checks: {exc}"
            ) from None
        batch.append(preprocess(image, spec))
    return np.stack(batch).astype(np.float32)


def ort_session(path: Path) -> Any:
    """ONNX Runtime on CPU, or a refusal that says what the runtime said."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented types
        raise ModelRefusedError(
            f"{path}: ONNX Runtime (CPU) cannot load it: {exc}; export with opset <= 21 and "
            "standard operators"
        ) from None


def run_contract(session: Any, batch: np.ndarray) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    try:
        values = session.run(names, {"input": batch})
    except Exception as exc:  # shape or type errors surface as onnxruntime exceptions
        raise ModelRefusedError(
            f"the model fails on a batch of shape {batch.shape}: {exc}"
        ) from None
    return dict(zip(names, (np.asarray(v) for v in values), strict=True))


def check_outputs(out: dict[str, np.ndarray], declaration: Declaration, n: int, model: str) -> None:
    """Shapes against labels and batch; finite; a probabilities output sums to 1."""
    logits = out["logits"]
    want = [n, len(declaration.labels)]
    if list(logits.shape) != want:
        raise ModelRefusedError(
            f"{model}: output {declaration.io.logits!r} has shape {list(logits.shape)} for "
            f"{n} images, but {len(declaration.labels)} labels {declaration.labels} mean {want}"
        )
    for name, value in out.items():
        if not np.isfinite(value).all():
            raise ModelRefusedError(
                f"{model}: output {name!r} has non-finite values on real images"
            )
    if "features" in out and (out["features"].ndim != 2 or len(out["features"]) != n):
        raise ModelRefusedError(
            f"{model}: io.features has shape {list(out['features'].shape)}; expected [N, D]"
        )
    if declaration.io.output_kind == "probabilities":
        sums = np.exp(logits.astype(np.float64)).sum(axis=1)
        worst = float(np.abs(sums - 1.0).max())
        if worst > SUM_TOLERANCE:
            raise ModelRefusedError(
                f"{model}: io.output_kind is 'probabilities' but outputs sum to 1 only within "
                f"{worst:.3g} (tolerance {SUM_TOLERANCE}); declare output_kind: logits"
            )


def raw_output(declaration: Declaration, logits: np.ndarray) -> np.ndarray:
    """The model's own output from the contract's logits (undoes the probabilities Log)."""
    return np.exp(logits) if declaration.io.output_kind == "probabilities" else logits


def original_parity(
    source: Path, declaration: Declaration, batch: np.ndarray, adapted: dict[str, np.ndarray]
) -> float:
    """Largest difference between the original graph (its own input, channel order and output
    names) and the adapted one, on the same images."""
    session = ort_session(source)
    x = batch[:, ::-1] if declaration.preprocess.colour_order == "BGR" else batch
    io = declaration.io
    roles = {r: getattr(io, r) for r in ("logits", "features", "cam_activations")}
    roles = {r: name for r, name in roles.items() if name is not None}
    values = session.run(list(roles.values()), {io.input: np.ascontiguousarray(x)})
    worst = 0.0
    for (role, _), want in zip(roles.items(), values, strict=True):
        have = raw_output(declaration, adapted[role]) if role == "logits" else adapted[role]
        worst = max(worst, float(np.abs(np.asarray(want) - have).max()))
    if not worst <= PARITY_TOLERANCE:
        raise ModelRefusedError(
            f"{source}: the adapted graph differs from the original by {worst:.3g} "
            f"(tolerance {PARITY_TOLERANCE:g}); report this as an edgeward bug"
        )
    return worst


def check_references(
    declaration: Declaration, base: Path, logits_of: Any, model: str
) -> dict[str, float]:
    """Each declared pair: the image through the shared decoder + declared preprocessing, then
    the model, must give the declared output. `logits_of(batch)` gives contract logits."""
    if not declaration.references:
        return {}
    spec = declaration.preprocess.serving_spec()
    worst = 0.0
    for i, ref in enumerate(declaration.references):
        batch = load_images([base / ref.image], spec)
        got = raw_output(declaration, np.asarray(logits_of(batch))[0])
        want = np.asarray(ref.output, dtype=np.float64)
        if got.shape != want.shape:
            raise ModelRefusedError(
                f"{model}: references.{i}.output has {len(want)} values; the model gives {len(got)}"
            )
        diff = float(np.abs(got - want).max())
        if not diff <= ref.tolerance:
            raise ModelRefusedError(
                f"{model}: references.{i} ({ref.image}): the model gives "
                f"{np.round(got, 5).tolist()} but the declaration says {ref.output} (max "
                f"difference {diff:.3g} > tolerance "
                f"{ref.tolerance:g}); the declared preprocessing (size, colour order, mean/std, "
                "crop) is not what the model was trained with"
            )
        worst = max(worst, diff)
    return {"reference_max_abs_diff": worst, "reference_pairs": float(len(declaration.references))}
