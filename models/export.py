"""ONNX export with a dynamic batch axis, and the ONNX Runtime vs PyTorch parity check."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from shared.errors import EdgewardError

OPSET = 17
PARITY_TOLERANCE = 1e-4
INPUT_NAME = "input"


class ParityError(EdgewardError):
    """The exported graph does not compute what the PyTorch model computes."""


def _as_outputs(result: object) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in result):
        return list(result)
    raise TypeError(f"model must return a tensor or a tuple of tensors, got {type(result)}")


def check_parity(
    model: torch.nn.Module,
    onnx_path: Path,
    inputs: torch.Tensor,
    output_names: Sequence[str],
    tolerance: float = PARITY_TOLERANCE,
) -> dict[str, float]:
    """Run the same inputs through ONNX Runtime (CPU) and PyTorch; raise if they differ."""
    model.eval()
    with torch.no_grad():
        expected = [t.numpy() for t in _as_outputs(model(inputs))]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(list(output_names), {INPUT_NAME: inputs.numpy().astype(np.float32)})
    diffs = {}
    for name, want, have in zip(output_names, expected, got, strict=True):
        if want.shape != have.shape:
            raise ParityError(
                f"{onnx_path}: output {name!r} has shape {have.shape} in ONNX Runtime but "
                f"{want.shape} in PyTorch; fix the export"
            )
        diffs[name] = float(np.abs(want - have).max())
    worst = max(diffs.values())
    if not worst <= tolerance:  # also catches NaN
        detail = ", ".join(f"{k} {v:.3g}" for k, v in diffs.items())
        raise ParityError(
            f"{onnx_path}: ONNX Runtime and PyTorch disagree by up to {worst:.3g} "
            f"(tolerance {tolerance:g}; per output: {detail}) on {len(inputs)} inputs; the "
            "export is wrong (unsupported op or mode-dependent code?) and was not kept"
        )
    return {"max_abs_diff": worst, "n_images": float(len(inputs)), "tolerance": tolerance}


def export_onnx(
    model: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    output_names: Sequence[str],
    tolerance: float = PARITY_TOLERANCE,
) -> dict[str, float]:
    """Export `model` (input `input`, batch axis dynamic) and check parity on `example`.

    `example` doubles as the parity set: pass the 64 real images the check should use.
    Returns the parity record for the manifest; on a parity failure the file is deleted and
    ParityError says by how much the runtimes disagreed.
    """
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {name: {0: "batch"} for name in [INPUT_NAME, *output_names]}
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated but needs no onnxscript and handles these nets
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example[:2],),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=list(output_names),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    try:
        return check_parity(model, path, example, output_names, tolerance)
    except ParityError:
        path.unlink(missing_ok=True)
        raise


CAM_OUTPUT = "cam_activations"


class WithCamActivations(torch.nn.Module):
    """Export wrapper for the cloud grader: (logits, features) plus its CAM layer's output.

    With the last block's activations as an output, a runtime that has no autograd (ONNX
    Runtime, TensorRT) still gives everything a GAP + linear head's Grad-CAM needs.
    """

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        captured: list[torch.Tensor] = []
        layer = self.net.cam_target_layer()  # type: ignore[operator]
        handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            logits, features = self.net.forward_with_features(x)  # type: ignore[operator]
        finally:
            handle.remove()
        return logits, features, captured[-1]


def export_grader_with_cam(
    net: torch.nn.Module, example: torch.Tensor, path: Path
) -> dict[str, float]:
    """The grader's ONNX with `cam_activations` as a third output, parity-checked like the rest."""
    return export_onnx(WithCamActivations(net), example, path, ["logits", "features", CAM_OUTPUT])
