"""Traffic payloads: counts up, plans down (with expiry), and mode changes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.messages.base import Message, Part

ControlMode = Literal["coordinated", "actuated", "fixed"]
# cyclic: the junction's program in order with these greens; acyclic: after each green the
# junction goes to the green of highest pressure
PlanControl = Literal["cyclic", "acyclic"]


class ApproachCount(Part):
    """One incoming approach over one control interval ."""

    approach_id: str = Field(..., min_length=1)
    queue: float = Field(..., ge=0, description="vehicles queued (estimated)")
    approaching: float = Field(..., ge=0, description="vehicles moving toward the stop line")
    camera_healthy: bool = True
    camera_reason: str = ""


class TrafficAggregate(Message):
    junction_id: str = Field(..., min_length=1)
    interval_start: float
    interval_s: float = Field(..., gt=0)
    approaches: list[ApproachCount]
    mode: ControlMode
    phase_index: int = Field(0, ge=0)


class PhaseGreen(Part):
    phase_index: int = Field(..., ge=0)
    green_s: float = Field(..., gt=0)
    pressure: float | None = Field(
        None, description="max-pressure priority (vehicles per lane); acyclic plans only"
    )
    arriving: float | None = Field(
        None,
        ge=0,
        description="vehicles per lane released upstream, out of the junction's sight, due at "
        "this phase's stop lines soon: the gateway does not gap this green out before them",
    )


class SignalPlan(Message):
    """A timing plan for one junction. Never applied after `expires_at`."""

    junction_id: str = Field(..., min_length=1)
    plan_id: str = Field(..., min_length=1)
    issued_at: float
    expires_at: float
    cycle_s: float = Field(..., gt=0)
    offset_s: float = Field(0.0, ge=0)
    greens: list[PhaseGreen] = Field(..., min_length=1)
    control: PlanControl = Field("cyclic", description="how the junction runs the greens")

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> SignalPlan:
        if self.expires_at <= self.issued_at:
            raise ValueError(
                f"expires_at ({self.expires_at}) must be after issued_at ({self.issued_at})"
            )
        missing = [g.phase_index for g in self.greens if g.pressure is None]
        if self.control == "acyclic" and missing:
            raise ValueError(f"an acyclic plan needs a pressure for every green; phases {missing}")
        if self.control == "cyclic" and len(missing) < len(self.greens):
            raise ValueError("a cyclic plan carries no pressures; send control='acyclic'")
        return self


class ModeChange(Message):
    junction_id: str = Field(..., min_length=1)
    from_mode: ControlMode
    to_mode: ControlMode
    reason: str = Field(..., min_length=1)
