"""Rebuild a registered PyTorch model from its verified artifact (the cloud tier uses this)."""

from __future__ import annotations

import torch
from torch import nn

from models.architectures import FeatureNet, build_module
from shared.errors import ModelRefusedError
from shared.registry import VerifiedModel


def load_torch_module(verified: VerifiedModel) -> nn.Module:
    """Any registered model (fundus nets, the traffic counter) in eval mode."""
    manifest = verified.manifest
    if isinstance(manifest.extra.get("imported"), dict):
        from models.importer.grader import load_imported

        return load_imported(verified)
    arch = manifest.extra.get("architecture")
    if not isinstance(arch, dict) or "name" not in arch:
        raise ModelRefusedError(
            f"model {manifest.model_id}: manifest.extra.architecture is missing, so its PyTorch "
            "weights cannot be rebuilt; re-register it with `edgeward models build`"
        )
    try:
        model = build_module(arch["name"], dict(arch.get("kwargs", {})))
    except (ValueError, TypeError) as exc:
        raise ModelRefusedError(f"model {manifest.model_id}: {exc}") from None
    path = verified.path("pytorch")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelRefusedError(
            f"model {manifest.model_id}: {path} does not fit architecture {arch['name']}: {exc}"
        ) from None
    return model.eval()


def load_torch_model(verified: VerifiedModel) -> FeatureNet:
    """A fundus model in eval mode; `forward` gives logits, `cam_target_layer()` the CAM layer."""
    model = load_torch_module(verified)
    if not isinstance(model, FeatureNet):
        raise ModelRefusedError(
            f"model {verified.manifest.model_id} is a {type(model).__name__}, not a fundus "
            "feature net (no features output or Grad-CAM layer)"
        )
    return model
