"""A verified registry model on a backend: preprocessed batch in, calibrated probabilities out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.backends.api import Backend
from edge.backends.registry import create_backend
from shared.registry import Manifest, Registry


@dataclass(frozen=True)
class Prediction:
    """One image's outputs: raw logits, temperature-scaled probabilities, pooled features."""

    logits: np.ndarray  # (C,)
    probabilities: np.ndarray  # (C,) calibrated as the manifest says (manifest.probabilities)
    features: np.ndarray | None  # (D,) penultimate features, for out-of-distribution scores

    def prob(self, label: str, labels: list[str]) -> float:
        return float(self.probabilities[labels.index(label)])


class ServedModel:
    """The serving version of a registry model (checksums and preprocessing hash verified)."""

    def __init__(
        self,
        registry: Registry,
        name: str,
        backend: str = "auto",
        cache_dir: Path | None = None,
        **options: Any,
    ) -> None:
        verified = registry.load_serving(name)
        self.manifest: Manifest = verified.manifest
        self.backend: Backend = create_backend(backend, verified, cache_dir, **options)

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    def predict(self, batch: np.ndarray) -> list[Prediction]:
        """Predictions for a float32 batch made by `shared.preprocess` with this model's spec."""
        out = self.backend.run(batch)
        logits = np.asarray(out["logits"], dtype=np.float64)
        probs = self.manifest.probabilities(logits)
        features = out.get("features")
        return [
            Prediction(
                logits[i],
                probs[i],
                None if features is None else np.asarray(features[i], dtype=np.float64),
            )
            for i in range(len(logits))
        ]

    def close(self) -> None:
        self.backend.close()
