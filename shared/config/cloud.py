"""Configuration of the cloud tier (one Ray Serve application)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from shared.config.base import MqttSettings, StrictModel
from shared.config.flywheel import CanaryGates


class GraderSettings(StrictModel):
    model: str = Field("fundus-grader", description="registry name of the cloud grader")
    min_replicas: int = Field(1, ge=1, le=64, description="fewest grader replicas")
    max_replicas: int = Field(1, ge=1, le=64, description="most grader replicas")
    max_batch_size: int = Field(8, ge=1, le=256, description="@serve.batch max_batch_size")
    batch_wait_timeout_s: float = Field(
        0.01, ge=0, le=5, description="@serve.batch wait for a fuller batch"
    )
    explain: bool = Field(True, description="compute a Grad-CAM heatmap with every grade")
    canary: CanaryGates | None = Field(
        None, description="canary the registry's challenger against the champion (null = off)"
    )
    prediction_log: str = Field(
        "predictions.sqlite",
        max_length=4096,
        description="SQLite log of every grade, relative to data_dir; with "
        "EDGEWARD_DATABASE_URL set, the grades go to that database instead ('' = off; needs "
        "EDGEWARD_SITE_KEY to pseudonymise scan ids)",
    )

    @model_validator(mode="after")
    def _replicas(self) -> GraderSettings:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) must be >= min_replicas ({self.min_replicas})"
            )
        return self


Ingress = Literal["haproxy", "proxy"]


class CloudConfig(StrictModel):
    role: Literal["cloud"] = Field("cloud", description="config kind")
    data_dir: Path = Field(Path("var/cloud"), description="results and review queue live here")
    registry_dir: Path = Field(Path("registry"), description="model registry root")
    http_port: int = Field(8000, ge=1, le=65535, description="Serve HTTP ingress port")
    grpc_port: int = Field(9000, ge=1, le=65535, description="Serve gRPC ingress port")
    ingress: Ingress = Field(
        "haproxy",
        description="what takes the HTTP and gRPC ports of the Ray node `edgeward cloud up` "
        "starts: 'haproxy' (Serve's HAProxy ingress, straight to the grading replicas) or "
        "'proxy' (Serve's Python proxy, one more hop). On a cluster you start yourself, set "
        "RAY_SERVE_ENABLE_HA_PROXY=1 in the Ray nodes' environment (deploy/kuberay does)",
    )
    grader: GraderSettings = Field(default_factory=GraderSettings)
    review_band: tuple[float, float] = Field(
        (0.2, 0.8), description="referable probabilities in this band go to a human"
    )
    review_sample: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="fraction of confident results also sent to a reviewer as a quality-"
        "assurance sample (picked by scan id, so a replay picks the same); 0 sends none",
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    image_retention_days: float = Field(
        90.0,
        gt=0,
        le=3650,
        description="days after its decision that a review case's image (decoded pixels only, "
        "never the upload with its tags) and heatmap are deleted; open cases keep theirs",
    )

    @model_validator(mode="after")
    def _band(self) -> CloudConfig:
        low, high = self.review_band
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"review_band ({low}, {high}) must satisfy 0 <= low < high <= 1")
        return self
