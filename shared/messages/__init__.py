"""Versioned MQTT payload schemas."""

from shared.messages.base import Message, decode
from shared.messages.clinic import ScanVerdictEvent
from shared.messages.status import GatewayStatus
from shared.messages.traffic import (
    ApproachCount,
    ModeChange,
    PhaseGreen,
    SignalPlan,
    TrafficAggregate,
)

__all__ = [
    "ApproachCount",
    "GatewayStatus",
    "Message",
    "ModeChange",
    "PhaseGreen",
    "ScanVerdictEvent",
    "SignalPlan",
    "TrafficAggregate",
    "decode",
]
