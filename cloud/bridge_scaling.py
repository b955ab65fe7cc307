"""How many bridge replicas: Serve's autoscaler asks `bridge_policy`, fed by each replica's load.

The bridge takes no requests (it pulls from the broker), so Serve's default policy, which counts
ongoing requests, would never see it busy. Each replica reports instead the share of wall time
its MQTT loop spent working rather than waiting on a quiet socket (`record_autoscaling_stats`);
the policy sizes the group so that the total work runs at about `TARGET_BUSY` per replica.
The decision itself (`replicas_for`) is Ray-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

BUSY_METRIC = "bridge_busy"
TARGET_BUSY = 0.6  # above: add replicas; the broker's backlog grows once a replica nears 1.0
DOWN_BUSY = 0.35  # below, even with one replica fewer: remove one (a gap, so it does not flap)


def replicas_for(busy: Mapping[Any, float], current: int, lowest: int, highest: int) -> int:
    """Replicas for the reported busy shares (0..1 per replica), within [lowest, highest]."""
    if highest < lowest:
        raise ValueError(f"bridge autoscaling: max replicas {highest} < min replicas {lowest}")
    current = max(current, 1)
    if not busy:  # no reports yet (a replica starting): keep what there is
        return max(lowest, min(highest, current))
    total = sum(min(max(b, 0.0), 1.0) for b in busy.values())
    want = current
    if total / current > TARGET_BUSY:
        want = math.ceil(total / TARGET_BUSY)
    elif current > 1 and total / (current - 1) < DOWN_BUSY:
        want = current - 1
    return max(lowest, min(highest, want))


def bridge_policy(ctx: Any) -> tuple[int, dict[str, Any]]:
    """Serve custom autoscaling policy (`AutoscalingContext` in, replica count out)."""
    metrics = ctx.aggregated_metrics or {}
    n = replicas_for(
        metrics.get(BUSY_METRIC, {}),
        ctx.current_num_replicas,
        ctx.capacity_adjusted_min_replicas,
        ctx.capacity_adjusted_max_replicas,
    )
    return n, {}
