"""Gateway health: retained on the status topic; the broker publishes the Last Will on loss."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.messages.base import Message


class GatewayStatus(Message):
    gateway_id: str = Field(..., min_length=1)
    kind: Literal["clinic", "traffic"]
    state: Literal["online", "offline", "degraded"]
    outbox_depth: int = Field(0, ge=0)
    detail: str = ""
