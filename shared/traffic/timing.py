"""Change-interval timing from a junction's geometry: the ITE kinematic formulas.

Yellow: y = t + v / (2a + 2Ag): perception-reaction time t, approach speed v, comfortable
deceleration a, grade A (fraction, uphill positive), gravity g. Red clearance: r = (W + L) / v,
the time a vehicle that entered on the last instant of yellow needs to cross the intersection
width W and clear it by its own length L. The configured `yellow_s` / `all_red_s` are floors: a
junction's geometry may only lengthen them, never shorten what the operator set.
"""

from __future__ import annotations

from shared.config.traffic import JunctionGeometry, SignalSafety

YELLOW_MIN_S = 3.0  # MUTCD 4D.26: a yellow change interval lasts 3 to 6 s
YELLOW_MAX_S = 6.0
ALL_RED_MAX_S = 10.0  # SignalSafety's own bound on all_red_s
PERCEPTION_REACTION_S = 1.0
DECELERATION_MPS2 = 3.05  # 10 ft/s2
GRAVITY_MPS2 = 9.81
VEHICLE_LENGTH_M = 6.1  # 20 ft


def ite_yellow_s(speed_mps: float, grade: float = 0.0) -> float:
    """The kinematic yellow for an approach speed, within 3-6 s."""
    if speed_mps <= 0:
        raise ValueError(f"approach speed {speed_mps} m/s must be positive")
    braking = 2 * DECELERATION_MPS2 + 2 * grade * GRAVITY_MPS2
    if braking <= 0:
        raise ValueError(f"grade {grade} is too steep downhill for the ITE yellow formula")
    y = PERCEPTION_REACTION_S + speed_mps / braking
    return min(YELLOW_MAX_S, max(YELLOW_MIN_S, y))


def ite_red_clearance_s(speed_mps: float, width_m: float) -> float:
    """The red clearance to cross `width_m` and clear it by a vehicle length, at most 10 s."""
    if speed_mps <= 0:
        raise ValueError(f"approach speed {speed_mps} m/s must be positive")
    if width_m < 0:
        raise ValueError(f"intersection width {width_m} m must not be negative")
    return min(ALL_RED_MAX_S, (width_m + VEHICLE_LENGTH_M) / speed_mps)


def junction_limits(safety: SignalSafety, geometry: JunctionGeometry | None) -> SignalSafety:
    """The limits one junction runs under: the configured ones, lengthened by its kinematics."""
    if geometry is None:
        return safety
    yellow = max(safety.yellow_s, ite_yellow_s(geometry.approach_speed_mps, geometry.grade))
    red = max(safety.all_red_s, ite_red_clearance_s(geometry.approach_speed_mps, geometry.width_m))
    return safety.model_copy(update={"yellow_s": round(yellow, 2), "all_red_s": round(red, 2)})


__all__ = ["JunctionGeometry", "ite_red_clearance_s", "ite_yellow_s", "junction_limits"]
