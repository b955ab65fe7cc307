"""The interface every inference runtime implements (one plugin file per runtime)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from shared.errors import EdgewardError
from shared.registry import VerifiedModel


class BackendUnavailableError(EdgewardError):
    """This runtime cannot serve here (package, GPU or artifact missing); the message says which."""


class Backend(ABC):
    """Runs one verified model: float32 NCHW batch in, named output arrays out."""

    kind: ClassVar[str]  # the type string in configs, e.g. "onnx-cpu"
    input_name: str = "input"  # the ONNX contract's input tensor
    max_batch: ClassVar[int | None] = None  # larger batches are split into chunks of this size

    def __init__(self, model: VerifiedModel, cache_dir: Path | None = None) -> None:
        self.model = model
        self.cache_dir = cache_dir

    @classmethod
    @abstractmethod
    def unavailable_reason(cls) -> str | None:
        """None if this runtime can run on this host, else why not (cheap: no model loaded)."""

    @property
    def name(self) -> str:
        return self.kind

    @property
    @abstractmethod
    def providers(self) -> list[str]:
        """The execution providers / devices actually in use, most preferred first."""

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on a validated batch."""

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs (`logits`, `features`, ...) for a float32 batch of shape (N, 3, S, S)."""
        expected = self.model.manifest.input_shape
        if batch.ndim != 4 or list(batch.shape[1:]) != [int(d) for d in expected[1:]]:
            raise ValueError(
                f"{self.kind} backend for {self.model.manifest.model_id}: expected a batch of "
                f"shape (N, {', '.join(str(d) for d in expected[1:])}), got {tuple(batch.shape)}"
            )
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.max_batch is None or len(batch) <= self.max_batch:
            return self._infer(batch)
        parts = [
            self._infer(batch[i : i + self.max_batch]) for i in range(0, len(batch), self.max_batch)
        ]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def close(self) -> None:  # noqa: B027 - optional hook; most runtimes free on GC
        """Release device memory and contexts."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model.manifest.model_id} on {self.providers}>"
