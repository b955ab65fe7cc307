"""Versioned MQTT payload schemas."""

from shared.messages.base import Message, decode
from shared.messages.clinic import ScanVerdictEvent
from shared.messages.flywheel import DriftAlert, DriftFinding, ModelUpdate, ModelUpdateAck
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
    "DriftAlert",
    "DriftFinding",
    "GatewayStatus",
    "Message",
    "ModeChange",
    "ModelUpdate",
    "ModelUpdateAck",
    "PhaseGreen",
    "ScanVerdictEvent",
    "SignalPlan",
    "TrafficAggregate",
    "decode",
]
