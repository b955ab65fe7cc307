"""The model manifest: everything needed to trust, serve and audit one model version."""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shared.preprocess import PreprocessSpec
from shared.registry.calibration import calibrated_probabilities

Stage = Literal["candidate", "challenger", "champion", "archived"]
STAGES: tuple[Stage, ...] = ("candidate", "challenger", "champion", "archived")


class Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A bare file name: a manifest that arrives over the air must not name a path that escapes
    # its version directory ('../..', '/etc/...', 'sub/dir').
    path: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$",
        description="bare file name inside the version directory (no '/', not starting with '.')",
    )
    sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(..., ge=0)
    meta: dict[str, Any] = Field(default_factory=dict, description="e.g. TensorRT version, GPU")


class StageChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Stage
    at: str = Field(..., description="ISO-8601 UTC time")
    reason: str = ""


class Manifest(BaseModel):
    """One registered model version (`registry/<name>/<version>/manifest.json`)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: int = 1
    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str = Field(..., pattern=r"^[0-9]+$", description="increasing integer as text")
    task: str = Field(..., description="quality | triage | grader | counter | ...")
    created_at: str = Field(..., description="ISO-8601 UTC time")
    stage: Stage = "candidate"
    history: list[StageChange] = Field(default_factory=list)
    artifacts: dict[str, Artifact] = Field(
        default_factory=dict, description="kind (onnx, pytorch, onnx_int8, trt_fp16) -> file"
    )
    preprocess: PreprocessSpec
    preprocess_hash: str
    input_shape: list[int | str] = Field(..., description="e.g. ['batch', 3, 224, 224]")
    labels: list[str] = Field(default_factory=list)
    temperature: float = Field(1.0, gt=0, description="calibration temperature for the logits")
    calibration: dict[str, Any] = Field(
        default_factory=dict,
        description="how logits become probabilities (shared.registry.calibration); "
        "empty: softmax(logits / temperature)",
    )
    thresholds: dict[str, float] = Field(default_factory=dict)
    operating_point: dict[str, Any] = Field(
        default_factory=dict, description="what the thresholds were chosen for, and what it gave"
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="held-out split")
    subgroup_metrics: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict, description="attribute -> subgroup -> metric -> value"
    )
    subgroup_gap: dict[str, float] = Field(
        default_factory=dict, description="metric -> largest gap between subgroups"
    )
    data_snapshot: dict[str, Any] = Field(
        default_factory=dict, description="generator version, parameters and seed"
    )
    parity: dict[str, float] = Field(
        default_factory=dict, description="ONNX Runtime vs PyTorch: max_abs_diff, n_images"
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="task-specific data, e.g. OOD reference statistics"
    )
    signatures: dict[str, str] = Field(
        default_factory=dict,
        description="artifact kind -> Ed25519 signature (base64) of signed_bytes(kind)",
    )

    @property
    def model_id(self) -> str:
        return f"{self.name}:{self.version}"

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of raw logits [..., C], as the factory fitted them."""
        return calibrated_probabilities(logits, self.temperature, self.calibration, self.model_id)

    def signed_bytes(self, kind: str) -> bytes:
        """What the signature of artifact `kind` covers: the whole manifest but its local state.

        Stage and history change on every gateway and are not signed; each artifact is signed
        on its own so a gateway that receives only the ONNX file can still verify it.
        """
        # Through pydantic's JSON encoder first, so the bytes are the same on both sides of a
        # manifest_json transfer (NaN, tuples and numpy scalars normalise identically).
        body = json.loads(
            self.model_dump_json(exclude={"stage", "history", "signatures", "artifacts"})
        )
        body["artifact"] = {"kind": kind, **json.loads(self.artifacts[kind].model_dump_json())}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def missing_for_promotion(self) -> list[str]:
        """Fields a champion must have; empty means the manifest is complete."""
        missing = [
            key
            for key in ("artifacts", "labels", "thresholds", "operating_point", "metrics")
            if not getattr(self, key)
        ]
        if "onnx" not in self.artifacts:
            missing.append("artifacts.onnx")
        if not self.data_snapshot.get("id"):
            missing.append("data_snapshot.id")
        if "max_abs_diff" not in self.parity:
            missing.append("parity.max_abs_diff")
        return missing
