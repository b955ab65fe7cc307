"""Grad-CAM two ways: in closed form from forward activations, or by pytorch-grad-cam's backward.

For a head that is global average pooling then a linear layer, logit c is
`sum_k W[c, k] * mean_ij A[k, i, j] + b[c]`, so its gradient on the CAM layer is `W[c, k] / (h*w)`
at every pixel and Grad-CAM's channel weights are exactly `W[c] / (h*w)`: the heat map needs
only the activations of the forward pass, never a backward one. `linear_head` checks that a
model's numbers really obey that formula; where they do not, `TorchGradCam` runs
pytorch-grad-cam through its public lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

HEAD_TOLERANCE = 1e-3  # logits recomputed from pooled activations may differ by float noise only


@dataclass(frozen=True)
class LinearHead:
    """The head's weights [C, K] and bias [C]: logits = mean over pixels of A, then W·a + b."""

    weight: np.ndarray
    bias: np.ndarray


def linear_head(model: torch.nn.Module, logits: np.ndarray, acts: np.ndarray) -> LinearHead | None:
    """The model's head if `logits` equal W·GAP(acts) + b on this sample, else None.

    Checked on numbers, not on class names: a subclass that adds anything between the CAM layer
    and the head (attention, a hidden layer, a different pooling) fails it and falls back.
    """
    from torch import nn

    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or acts.ndim != 4:
        return None
    weight = head.weight.detach().cpu().numpy().astype(np.float64)
    bias = (
        np.zeros(weight.shape[0])
        if head.bias is None
        else head.bias.detach().cpu().numpy().astype(np.float64)
    )
    if weight.shape[1] != acts.shape[1] or weight.shape[0] != logits.shape[1]:
        return None
    pooled = acts.astype(np.float64).mean(axis=(2, 3))
    predicted = pooled @ weight.T + bias
    if not np.allclose(predicted, logits, atol=HEAD_TOLERANCE, rtol=HEAD_TOLERANCE):
        return None
    return LinearHead(weight.astype(np.float32), bias.astype(np.float32))


def _min_max(img: np.ndarray) -> np.ndarray:
    # the same scaling as pytorch_grad_cam.utils.image.scale_cam_image, epsilon included
    img = img - np.min(img)
    return np.asarray(img / (1e-7 + np.max(img)), dtype=np.float32)


def cam_from_activations(
    acts: np.ndarray, head: LinearHead, classes: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Grad-CAM maps [N, H, W] (0..1, H, W = `size`) of `classes` from activations [N, K, h, w].

    Post-processing follows pytorch-grad-cam step by step (ReLU, min-max, bilinear resize, then
    min-max again), so the two agree to float precision where the closed form holds.
    """
    n, _, h, w = acts.shape
    if len(classes) != n:
        raise ValueError(f"cam_from_activations: {len(classes)} classes for {n} activation maps")
    channel_weights = head.weight[classes] / float(h * w)  # [N, K]: Grad-CAM's alpha
    cams = np.einsum("nk,nkhw->nhw", channel_weights, acts.astype(np.float32))
    cams = np.maximum(cams, 0)
    height, width = size
    out = []
    for cam in cams:
        resized = cv2.resize(_min_max(cam), (width, height))
        out.append(_min_max(np.maximum(resized, 0)))
    return np.stack(out).astype(np.float32)


class TorchGradCam:
    """pytorch-grad-cam's GradCAM for heads the closed form does not cover (one backward pass).

    Uses only the library's public lifecycle: the hooks exist inside the `with` block.
    """

    def __init__(self, model: torch.nn.Module, target_layer: torch.nn.Module) -> None:
        self.model = model
        self.target_layer = target_layer

    def __call__(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(logits [N, C], CAMs [N, H, W]) from one forward and one backward pass."""
        from pytorch_grad_cam import GradCAM

        cams: np.ndarray | None = None
        logits: np.ndarray | None = None
        with GradCAM(model=self.model, target_layers=[self.target_layer]) as cam:
            # targets=None: the library explains the argmax class of this very forward pass,
            # whose logits it keeps in `outputs`, so there is no second forward pass.
            cams = cam(input_tensor=batch, targets=None)
            logits = cam.outputs.detach().float().numpy()
        # GradCAM.__exit__ swallows an IndexError after printing it: never return nothing.
        if cams is None or logits is None:
            raise RuntimeError(
                f"pytorch-grad-cam returned no CAM for a batch of {len(batch)}; see its message "
                "above (a target layer that produced no activations?)"
            )
        return logits, np.asarray(cams, dtype=np.float32)
