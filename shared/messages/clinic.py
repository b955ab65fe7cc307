"""Payloads a clinic gateway publishes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.messages.base import Message
from shared.verdicts import MAX_CODES, Verdict, check_codes


class ScanVerdictEvent(Message):
    """A verdict summary; no image and no patient identifier ever travels in it."""

    scan_id: str = Field(..., min_length=1, max_length=64)
    site_id: str = Field(..., min_length=1)
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)
    # the gateway's machine codes (`shared.verdicts`): the cloud's rule reads a doubt from them
    # when the verdict event reaches it before, or instead of, the upload's own
    codes: list[str] = Field(default_factory=list, max_length=MAX_CODES)
    confidence: float = Field(..., ge=0.0, le=1.0)
    source: Literal["edge", "cloud", "reviewer"] = "edge"
    model_versions: dict[str, str] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)

    @field_validator("codes")
    @classmethod
    def _codes_are_codes(cls, codes: list[str]) -> list[str]:
        return check_codes(codes)
