"""The grader's forward pass on an edge backend (ONNX Runtime CPU/CUDA, TensorRT EP).

The cloud serves through `edge.backends`, the interface the gateways use, so one runtime plugin
serves both tiers. The graph is exported from the verified PyTorch weights at load with the CAM
layer's activations as a third output (`models.export.export_grader_with_cam`), parity-checked
against PyTorch before it serves, and kept in a private temporary folder for the core's lifetime.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shared.registry import Artifact, Manifest, VerifiedModel

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
EXAMPLE_BATCH = 4  # inputs for the export trace and its parity check


class OnnxGraderForward:
    """`forward(batch)` -> {"logits", "features", "cam_activations"} on backend `kind`."""

    def __init__(
        self, model: torch.nn.Module, manifest: Manifest, kind: str = "auto", threads: int = 2
    ) -> None:
        import torch

        from edge.backends import create_backend
        from models.export import export_grader_with_cam

        folder = Path(tempfile.mkdtemp(prefix="edgeward-grader-"))
        try:
            path = folder / "grader-cam.onnx"
            shape = [int(d) for d in manifest.input_shape[1:]]
            # Inputs in the range the preprocessing produces; fixed seed, so a rebuild is equal.
            gen = torch.Generator().manual_seed(0)
            example = torch.rand(EXAMPLE_BATCH, *shape, generator=gen) * 2 - 1
            self.parity = export_grader_with_cam(model, example, path)
            self.example = example.numpy()
            data = path.read_bytes()
            artifact = Artifact(
                path=path.name,
                sha256=hashlib.sha256(data).hexdigest(),
                bytes=len(data),
                meta={"exported_from": "pytorch", "outputs": "logits, features, cam_activations"},
            )
            artifacts = {**manifest.artifacts, "onnx": artifact}
            verified = VerifiedModel(manifest.model_copy(update={"artifacts": artifacts}), folder)
            self.backend = create_backend(kind, verified, threads=threads)
        finally:
            # The runtime holds the graph once its session is made, so the file goes now: a
            # replica that is killed (never closed) must not leave 0.8 MB in /tmp per start.
            shutil.rmtree(folder, ignore_errors=True)
        log.info(
            "grader %s forward on %s %s (export parity %.2g)",
            manifest.model_id,
            self.backend.kind,
            self.backend.providers,
            self.parity["max_abs_diff"],
        )

    @property
    def kind(self) -> str:
        return self.backend.kind

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.backend.run(batch)

    def close(self) -> None:
        """Free the runtime (idempotent)."""
        self.backend.close()
