"""Payloads a clinic gateway publishes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.messages.base import Message
from shared.verdicts import Verdict


class ScanVerdictEvent(Message):
    """A verdict summary; no image and no patient identifier ever travels in it."""

    scan_id: str = Field(..., min_length=1, max_length=64)
    site_id: str = Field(..., min_length=1)
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)
    confidence: float = Field(..., ge=0.0, le=1.0)
    source: Literal["edge", "cloud", "reviewer"] = "edge"
    model_versions: dict[str, str] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)
