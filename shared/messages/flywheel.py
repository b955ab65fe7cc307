"""Payloads of the model flywheel: drift alerts and edge model updates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.messages.base import Message, Part


class DriftFinding(Part):
    feature: str = Field(..., min_length=1)
    method: str = Field(..., description="ks | psi+wasserstein | accuracy")
    statistic: float
    detail: str = ""


class DriftAlert(Message):
    """Published on `topics.alert("drift")` when a model's inputs, confidence or accuracy moved."""

    model: str = Field(..., min_length=1)
    model_version: str = Field(..., min_length=1)
    scope: str = Field(..., min_length=1, description="who judged: 'cloud' or a gateway id")
    window: int = Field(..., ge=1, description="predictions in the judged window")
    findings: list[DriftFinding] = Field(default_factory=list)
    concept_drift: bool = False
    notes: list[str] = Field(default_factory=list)


class ModelUpdate(Message):
    """A new model version for a gateway: the manifest and its ONNX artifact, checksummed.

    The gateway verifies `sha256` against the bytes and against the manifest before it swaps.
    """

    name: str = Field(..., min_length=1)
    version: str = Field(..., pattern=r"^[0-9]+$")
    manifest_json: str = Field(..., min_length=2, description="the version's manifest.json")
    artifact: str = Field("onnx", description="artifact kind carried in `payload_b64`")
    sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$")
    payload_b64: str = Field(..., min_length=1, description="the artifact bytes, base64")
    reason: str = Field("", description="why: canary, promotion, rollback")


class ModelUpdateAck(Message):
    """The gateway's answer to a ModelUpdate: applied, or refused with the reason."""

    update_id: str = Field(..., min_length=1, description="message_id of the ModelUpdate")
    gateway_id: str = Field(..., min_length=1)
    name: str
    version: str
    status: Literal["applied", "refused"]
    serving: str = Field(..., description="model id the gateway serves after this update")
    reason: str = ""
