"""Validated configuration models, one per deployment role, and their YAML loader."""

from shared.config.base import MqttSettings, StrictModel
from shared.config.clinic import ClinicGatewayConfig
from shared.config.cloud import CloudConfig
from shared.config.loader import ROLES, load_any_config, load_config
from shared.config.traffic import SignalSafety, TrafficGatewayConfig

__all__ = [
    "ROLES",
    "ClinicGatewayConfig",
    "CloudConfig",
    "MqttSettings",
    "SignalSafety",
    "StrictModel",
    "TrafficGatewayConfig",
    "load_any_config",
    "load_config",
]
