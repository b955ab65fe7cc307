"""An imported grader as the cloud serves it: a FeatureNet whose head is verified GAP + linear.

The cloud grader (cloud/grading.py) explains a scan with Grad-CAM from the CAM layer's forward
activations and the linear head's weights (cloud/cam.py). An imported grader declares which
output holds those activations; its head W, b is fitted here by least squares from its own
forward passes and accepted only if W·GAP(A) + b reproduces its logits on inputs the fit never
saw. The network runs on ONNX Runtime (a TorchScript grader is converted to ONNX on import);
the cloud serves it through PyTorch eager, so Grad-CAM is pytorch-grad-cam's backward pass,
which stops at the activations and crosses only the fitted head. The served logits stay the
model's own: the fitted head only carries Grad-CAM's gradient
(a straight-through sum: own + fitted - fitted.detach()).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.architectures import FeatureNet
from shared.errors import ModelRefusedError
from shared.registry import VerifiedModel

HEAD_TOLERANCE = 1e-4  # relative to the logits' spread; cloud/cam.py accepts up to 1e-3
FIT_MARGIN = 32  # fit on K + 1 + margin inputs, so the least-squares system is overdetermined
CHECK_INPUTS = 16


class OnnxBody(nn.Module):
    """An ONNX grader run by ONNX Runtime (CPU): no autograd, so no ONNX re-export either."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
            # Tracing would freeze ONNX Runtime's answer as a constant; refuse, so the cloud
            # grader serves this model in eager mode (its "auto" runtime falls back), with
            # ONNX Runtime still doing the network's work inside it.
            raise RuntimeError("an imported grader runs on ONNX Runtime; it cannot be traced")
        batch = x.detach().cpu().numpy().astype(np.float32)
        logits, acts = self.session.run(["logits", "cam_activations"], {"input": batch})
        # the activations are a leaf that asks for gradients, so pytorch-grad-cam can read
        # d logits / d activations through the fitted head
        return torch.from_numpy(logits), torch.from_numpy(acts).requires_grad_(
            torch.is_grad_enabled()
        )


class CamTap(nn.Identity):
    """The module whose output is the CAM layer's activations (hooks attach here)."""


class ImportedGrader(FeatureNet):
    """body -> (own logits, activations); features = GAP(activations); head = fitted W, b."""

    def __init__(self, body: nn.Module, weight: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        self.body = body
        self.tap = CamTap()
        self.drop = nn.Identity()
        self.head = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(np.asarray(weight, dtype=np.float32)))
            self.head.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float32)))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        own, acts = self.body(x)
        features = torch.flatten(nn.functional.adaptive_avg_pool2d(self.tap(acts), 1), 1)
        fitted = self.head(self.drop(features))
        return own.detach() + fitted - fitted.detach(), features

    def cam_target_layer(self) -> nn.Module:
        return self.tap


def _run(body: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        logits, acts = body(torch.from_numpy(x.astype(np.float32)))
    return logits.float().numpy(), acts.float().numpy()


def fit_head(body: nn.Module, inputs: np.ndarray, model: str) -> tuple[np.ndarray, np.ndarray]:
    """W [C, K], b [C] with logits = W·GAP(acts) + b, checked on the last CHECK_INPUTS inputs.

    `inputs` holds at least K + 1 + FIT_MARGIN + CHECK_INPUTS images; the caller makes them
    (real photographs first, then noise in the preprocessed range).
    """
    logits, acts = _run(body, inputs[:2])
    if acts.ndim != 4 or logits.ndim != 2 or len(acts) != 2:
        raise ModelRefusedError(
            f"{model}: io.cam_activations has shape {list(acts.shape)} and logits "
            f"{list(logits.shape)} for a batch of 2; expected [N, K, h, w] and [N, C]"
        )
    logits, acts = _run(body, inputs)
    pooled = acts.astype(np.float64).mean(axis=(2, 3))
    fit, check = slice(0, len(inputs) - CHECK_INPUTS), slice(len(inputs) - CHECK_INPUTS, None)
    design = np.hstack([pooled, np.ones((len(pooled), 1))])
    solution, *_ = np.linalg.lstsq(design[fit], logits[fit].astype(np.float64), rcond=None)
    predicted = design[check] @ solution
    spread = float(np.ptp(logits[check])) or 1.0
    error = float(np.abs(predicted - logits[check]).max()) / spread
    if not error <= HEAD_TOLERANCE:
        raise ModelRefusedError(
            f"{model}: its logits are not a linear function of the global-average-pooled "
            f"io.cam_activations (relative error {error:.2g} > {HEAD_TOLERANCE:g} on "
            f"{CHECK_INPUTS} unseen inputs); declare the output of the last conv block that "
            "feeds global average pooling and the final linear layer"
        )
    weight, bias = solution[:-1].T, solution[-1]
    return weight.astype(np.float32), bias.astype(np.float32)


def inputs_needed(body: nn.Module, size: int) -> int:
    """How many inputs `fit_head` needs for this model's channel count."""
    _, acts = _run(body, np.zeros((1, 3, size, size), dtype=np.float32))
    return int(acts.shape[1]) + 1 + FIT_MARGIN + CHECK_INPUTS


def head_record(weight: np.ndarray, bias: np.ndarray, error_checked: bool = True) -> dict[str, Any]:
    return {"weight": weight.tolist(), "bias": bias.tolist(), "checked": error_checked}


def load_imported(verified: VerifiedModel) -> ImportedGrader:
    """An imported grader as registered: body from its artifact, head from its signed manifest."""
    imported = verified.manifest.extra["imported"]
    if verified.manifest.task != "grader" or "cam_head" not in imported:
        raise ModelRefusedError(
            f"model {verified.manifest.model_id} was imported as a {verified.manifest.task} "
            "net; only an imported grader has a PyTorch form (the edge nets run from ONNX)"
        )
    # a TorchScript grader was converted to ONNX on import (and parity-checked): one body
    body = OnnxBody(verified.path("onnx"))
    head = imported["cam_head"]
    return ImportedGrader(body, np.asarray(head["weight"]), np.asarray(head["bias"])).eval()
