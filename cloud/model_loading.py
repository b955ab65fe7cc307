"""Resolve a registry model id to a verified, loaded PyTorch grader."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import EdgewardError, ModelRefusedError
from shared.registry import Registry, VerifiedModel

if TYPE_CHECKING:
    import torch

MODEL_ID = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]*)(?::(?P<version>[0-9]+))?$")


class BadModelIdError(EdgewardError):
    """A model id that is not `name` or `name:version`."""


def parse_model_id(model_id: str, default_name: str) -> tuple[str, str | None]:
    """`""` -> (default, None); `name` -> (name, None); `name:3` -> (name, "3")."""
    if not model_id:
        return default_name, None
    match = MODEL_ID.match(model_id)
    if match is None:
        raise BadModelIdError(
            f"model id {model_id!r} is not `name` or `name:version` (e.g. fundus-grader:3)"
        )
    return match["name"], match["version"]


def resolve(registry_dir: Path, model_id: str, default_name: str) -> VerifiedModel:
    """A name serves its champion (or the previous one if the champion fails verification);
    `name:version` serves exactly that version or is refused."""
    name, version = parse_model_id(model_id, default_name)
    registry = Registry(registry_dir)
    if version is None:
        return registry.load_serving(name)
    return registry.load(name, version)


def load_grader(verified: VerifiedModel) -> torch.nn.Module:
    """The grader in eval mode, checked to expose a Grad-CAM target layer."""
    try:
        from models.loading import load_torch_model
    except ImportError as exc:
        raise ModelRefusedError(
            f"cannot load {verified.manifest.model_id}: models.loading is unavailable ({exc}); "
            "install edgeward with the cloud extra"
        ) from None
    model = load_torch_model(verified)
    model.eval()
    if not callable(getattr(model, "cam_target_layer", None)):
        raise ModelRefusedError(
            f"model {verified.manifest.model_id} ({type(model).__name__}) has no "
            "cam_target_layer(); the cloud grader needs one for Grad-CAM"
        )
    labels = verified.manifest.labels
    if len(labels) != 5:
        raise ModelRefusedError(
            f"model {verified.manifest.model_id} has labels {labels}; the grader needs the 5 ICDR "
            "grades grade0..grade4"
        )
    return model
