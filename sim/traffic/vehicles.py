"""Vehicle states from TraCI for the cameras, through subscriptions (one call per step)."""

from __future__ import annotations

from typing import Any

from sim.traffic.camera import VehicleState


class VehicleFeed:
    """Subscribes every vehicle on departure; `states()` returns them all in one call."""

    def __init__(self, conn: Any) -> None:
        import traci.constants as tc

        self._conn = conn
        self._vars = [
            tc.VAR_LANE_ID,
            tc.VAR_LANEPOSITION,
            tc.VAR_SPEED,
            tc.VAR_LENGTH,
            tc.VAR_WIDTH,
            tc.VAR_COLOR,
            tc.VAR_LANEPOSITION_LAT,
        ]
        for vid in conn.vehicle.getIDList():
            conn.vehicle.subscribe(vid, self._vars)

    def on_step(self) -> None:
        for vid in self._conn.simulation.getDepartedIDList():
            self._conn.vehicle.subscribe(vid, self._vars)

    def states(self) -> list[VehicleState]:
        import traci.constants as tc

        out = []
        for values in self._conn.vehicle.getAllSubscriptionResults().values():
            if tc.VAR_LANE_ID not in values:
                continue
            colour = values[tc.VAR_COLOR]
            out.append(
                VehicleState(
                    lane_id=values[tc.VAR_LANE_ID],
                    pos_m=values[tc.VAR_LANEPOSITION],
                    speed=values[tc.VAR_SPEED],
                    length_m=values[tc.VAR_LENGTH],
                    width_m=values[tc.VAR_WIDTH],
                    colour=(int(colour[0]), int(colour[1]), int(colour[2])),
                    lat_m=values[tc.VAR_LANEPOSITION_LAT],
                )
            )
        return out
