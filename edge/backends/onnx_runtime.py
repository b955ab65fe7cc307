"""What the three ONNX Runtime plugins share: one InferenceSession on a chosen provider list."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort

from edge.backends.api import Backend, BackendUnavailableError
from edge.backends.gpu import ort_provider_reason
from shared.registry import VerifiedModel

log = logging.getLogger(__name__)


class OrtBackend(Backend):
    """An ONNX Runtime session whose first provider must really be active, or it refuses."""

    provider: ClassVar[str]  # the provider this plugin exists for

    def __init__(
        self, model: VerifiedModel, cache_dir: Path | None = None, threads: int = 0
    ) -> None:
        super().__init__(model, cache_dir)
        reason = self.unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"{self.kind}: {reason}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # 0 lets ORT use every core; a gateway sharing its CPU with ingest sets a cap.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle pool threads sleep instead of spinning: a gateway shares its cores with decoding
        # and ingest, and a Jetson's power budget with the camera link.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = model.path("onnx")
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=self.provider_list()
            )
        except Exception as exc:  # ORT raises bare RuntimeError/Fail subclasses
            raise BackendUnavailableError(
                f"{self.kind}: cannot open {path} for {model.manifest.model_id}: {exc}"
            ) from exc
        active = self.session.get_providers()
        # ORT silently falls back to CPU when a GPU provider fails to initialise: refuse that,
        # so a config that asked for the GPU never quietly runs ten times slower.
        if active[0] != self.provider:
            raise BackendUnavailableError(
                f"{self.kind}: onnxruntime fell back to {active[0]} instead of {self.provider} "
                f"for {model.manifest.model_id}; check the CUDA/TensorRT installation"
            )
        self._output_names = [o.name for o in self.session.get_outputs()]
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return ort_provider_reason(cls.provider)

    def provider_list(self) -> list[Any]:
        """Providers with options, in preference order, as InferenceSession takes them."""
        return [self.provider, "CPUExecutionProvider"]

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(self._output_names, {self.input_name: batch})
        pairs = zip(self._output_names, outputs, strict=True)
        return {name: np.asarray(value) for name, value in pairs}
