"""Configuration of a traffic gateway (one per signalised junction)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from shared.config.base import MqttSettings, StrictModel
from shared.config.clinic import Backend


class SignalSafety(StrictModel):
    """Hard limits the safe applier enforces whatever plan arrives."""

    min_green_s: float = Field(7.0, ge=3, le=60, description="shortest green of any phase")
    max_green_s: float = Field(90.0, ge=10, le=300, description="longest green of any phase")
    yellow_s: float = Field(4.0, ge=3, le=6, description="yellow change interval")
    all_red_s: float = Field(2.0, ge=0, le=10, description="red clearance after yellow")
    pedestrian_min_s: float = Field(
        7.0, ge=0, le=60, description="minimum walk time where a crossing exists"
    )
    max_plan_change_s: float = Field(
        15.0, ge=0, le=120, description="largest change of one phase's green between plans"
    )

    @model_validator(mode="after")
    def _green_bounds(self) -> SignalSafety:
        if self.max_green_s < self.min_green_s:
            raise ValueError(
                f"max_green_s ({self.max_green_s}) must be >= min_green_s ({self.min_green_s})"
            )
        return self


class JunctionGeometry(StrictModel):
    """What a junction's change interval depends on (the ITE formulas, shared.traffic.timing)."""

    approach_speed_mps: float = Field(
        ..., gt=0, le=40, description="85th-percentile (or posted) approach speed"
    )
    width_m: float = Field(
        ..., ge=0, le=150, description="stop line to the far side of the last conflicting lane"
    )
    grade: float = Field(0.0, ge=-0.1, le=0.1, description="approach grade, uphill positive")


class TrafficGatewayConfig(StrictModel):
    role: Literal["traffic_gateway"] = Field("traffic_gateway", description="config kind")
    # netconvert's joined clusters make ids of hundreds of characters; links and files use a
    # shortened form where they must (shared.traffic.ids)
    junction_id: str = Field(..., min_length=1, max_length=4096, description="SUMO tls id")
    data_dir: Path = Field(Path("var/traffic"), description="durable outbox lives here")
    registry_dir: Path = Field(Path("registry"), description="model registry root")
    counter_model: str = Field("traffic-counter", description="registry name of the counter")
    backend: Backend = Field("auto", description="inference backend")
    control_interval_s: float = Field(5.0, ge=1, le=60, description="aggregate period")
    # Off: on the tuning seeds a look every second won arterial_offsets and crossings (26.8 ->
    # 25.2, 36.2 -> 34.0 s) but on the held-out seeds it lost shared_light, joined_cluster and
    # crossings (README, "Tried and left off").
    gap_check_s: float = Field(
        0.0,
        ge=0,
        le=60,
        description="between aggregates, look this often whether the green shown has emptied "
        "and end it early (actuated's gap-out); 0 turns the look off",
    )
    plan_expiry_grace_s: float = Field(0.0, ge=0, le=60, description="tolerance on plan expiry")
    max_plan_lifetime_s: float = Field(
        300.0,
        ge=10,
        le=3600,
        description="a plan expires at most this long after it arrives, whatever its expires_at",
    )
    watchdog_s: float = Field(
        2.0,
        ge=0.5,
        le=6,
        description="a gateway loop stalled this long hands the junction to the controller's own "
        "plan (a yellow can overrun by at most this)",
    )
    safety: SignalSafety = Field(default_factory=SignalSafety)
    network_file: Path | None = Field(
        None,
        description="the junction's SUMO .net.xml: its conflict matrix (request foes) comes from "
        "here; without it every pair of links counts as conflicting (safe, slower)",
    )
    geometry: JunctionGeometry | None = Field(
        None,
        description="this junction's approach speed and width: the ITE yellow and red clearance "
        "lengthen safety.yellow_s / all_red_s where the kinematics need more",
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
