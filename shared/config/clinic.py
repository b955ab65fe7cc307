"""Configuration of a clinic gateway (the box beside a fundus camera)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from shared.config.base import MqttSettings, StrictModel
from shared.config.dicom import DicomSettings

Backend = Literal["auto", "onnx-cpu", "onnx-cuda", "onnx-tensorrt", "tensorrt"]


class HttpSettings(StrictModel):
    host: str = Field(
        "127.0.0.1",
        description="address the HTTP and gRPC upload APIs bind to; loopback unless you mean "
        "to open them (0.0.0.0 serves every network the box is on)",
    )
    port: int = Field(8080, ge=0, le=65535, description="HTTP port of the upload API; 0 = any free")
    token_env: str = Field(
        "EDGEWARD_GATEWAY_TOKEN",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable with the clients' bearer tokens "
        "(client=token pairs, comma-separated) for the HTTP and gRPC APIs",
    )
    max_connections: int = Field(
        32, ge=1, le=1024, description="HTTP connections served at once; one more gets 503"
    )
    grpc_max_concurrent_rpcs: int = Field(
        16, ge=1, le=1024, description="gRPC calls in flight at once; more get RESOURCE_EXHAUSTED"
    )


class ClinicLimits(StrictModel):
    max_upload_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, le=1 << 31, description="largest accepted upload"
    )
    min_side_px: int = Field(256, ge=32, le=4096, description="smallest accepted image side")
    max_pixels: int = Field(
        60_000_000, ge=1_000_000, le=500_000_000, description="decompression-bomb guard"
    )
    min_free_bytes: int = Field(
        512 * 1024 * 1024,
        ge=0,
        le=1 << 62,
        description="free space data_dir must keep; below it new scans are refused (HTTP 507, "
        "gRPC RESOURCE_EXHAUSTED) while accepted ones carry on",
    )


class UplinkTls(StrictModel):
    """Mutual TLS to the cloud's `edgeward grpc-tls` front (files from `edgeward certs`)."""

    ca_file: Path = Field(..., description="the CA that signed the cloud's server certificate")
    cert_file: Path = Field(..., description="this gateway's certificate; its CN is the site id")
    key_file: Path = Field(..., description="this gateway's private key (0600)")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class CloudUplink(StrictModel):
    grpc_target: str = Field("127.0.0.1:9000", description="host:port of the cloud gRPC ingress")
    tls: UplinkTls | None = Field(
        None,
        description="mutual TLS to the cloud (required unless grpc_target is on loopback): "
        "retinal images must not cross a network in clear",
    )
    timeout_s: float = Field(30.0, gt=0, le=600, description="deadline of one grading call")
    backoff_initial_s: float = Field(1.0, gt=0, le=60, description="first retry delay")
    backoff_max_s: float = Field(60.0, gt=0, le=3600, description="longest retry delay")
    max_attempts_transient: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="calls one scan may fail with UNAVAILABLE (cloud down) before it becomes a "
        "dead letter; high, since an outage is not the scan's fault",
    )
    max_attempts_refused: int = Field(
        5,
        ge=1,
        le=1000,
        description="calls one scan may fail with any other error (the cloud heard it and "
        "failed) before it becomes a dead letter and the queue moves on",
    )

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> CloudUplink:
        host = self.grpc_target.rsplit(":", 1)[0]
        if self.tls is None and host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"cloud.grpc_target {self.grpc_target!r} is not on this machine, so cloud.tls "
                "(ca_file, cert_file, key_file from `edgeward certs device SITE`) is required: "
                "scans must not cross a network in clear"
            )
        return self


class ClinicGatewayConfig(StrictModel):
    """One clinic gateway: where scans come from, which models judge them, where results go."""

    role: Literal["clinic_gateway"] = Field("clinic_gateway", description="config kind")
    site_id: str = Field(..., min_length=1, max_length=64, description="clinic identifier")
    gateway_id: str = Field("gw-1", min_length=1, max_length=64, description="this gateway")
    data_dir: Path = Field(Path("var/clinic"), description="SQLite records and outbox live here")
    watch_dir: Path | None = Field(None, description="folder the camera writes scans into")
    watch_poll_s: float = Field(
        1.0,
        ge=0.05,
        le=60,
        description="seconds between looks at watch_dir; a file is read once its size and "
        "modification time held still over two looks",
    )
    registry_dir: Path = Field(Path("registry"), description="model registry root")
    quality_model: str = Field("fundus-quality", description="registry name of the quality net")
    triage_model: str = Field("fundus-triage", description="registry name of the triage net")
    backend: Backend = Field("auto", description="inference backend; auto picks the best present")
    http: HttpSettings = Field(default_factory=HttpSettings)
    grpc_port: int = Field(0, ge=0, le=65535, description="gRPC Submit port; 0 = any free")
    limits: ClinicLimits = Field(default_factory=ClinicLimits)
    cloud: CloudUplink = Field(default_factory=CloudUplink)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    dicom: DicomSettings = Field(
        default_factory=DicomSettings, description="DICOM in (C-STORE SCP), SR/PDF/FHIR out"
    )
    model_updates: bool = Field(
        False,
        description="apply the model updates the cloud publishes for this gateway over MQTT "
        "(each verified before the swap: checksum, signature, trial run) and reload the "
        "pipeline; off by default",
    )
    retention_days: float = Field(
        30.0,
        gt=0,
        le=3650,
        description="days a scan's raw bytes, DICOM header and patient metadata stay on the "
        "gateway once its work is over (cloud result in, or final at the edge); done/ files too",
    )
    retention_check_s: float = Field(
        3600.0, ge=1, le=86_400, description="seconds between retention passes"
    )
    site_key_env: str = Field(
        "EDGEWARD_SITE_KEY",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable with the HMAC key that pseudonymises patient ids",
    )
