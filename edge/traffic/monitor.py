"""The gateway's conflict monitor, in the spirit of a cabinet's MMU: it watches what the
controller shows and, on a conflict, puts the junction into flash and raises the alarm.

It judges with the shared oracle (`shared.traffic.oracle`), never with the applier's own
timing code, so a fault in the applier cannot hide itself. Only faults that can hurt someone
trip it (`HARD_KINDS`: conflicting greens, a missing yellow or red clearance, a short yellow);
a green a little long is the applier's business, not a reason to flash.
"""

from __future__ import annotations

import logging

from shared.config.traffic import SignalSafety
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.oracle import HARD_KINDS, SafetyOracle, Violation

log = logging.getLogger(__name__)


class ConflictMonitor:
    """Feed it each state the controller shows; `tripped` once a hard violation was seen."""

    def __init__(
        self, junction_id: str, limits: SignalSafety, conflicts: ConflictMatrix | None
    ) -> None:
        self.junction_id = junction_id
        self._oracle = SafetyOracle(limits, conflicts, junction_id=junction_id)
        self.tripped: Violation | None = None

    def check(self, t: float, state: str) -> Violation | None:
        """The first hard violation this state makes (and from then on, the one that tripped)."""
        if self.tripped is not None:
            return self.tripped
        hard = [v for v in self._oracle.observe(t, state) if v.kind in HARD_KINDS]
        if hard:
            self.tripped = hard[0]
            log.critical(
                "junction %s: conflict monitor tripped at t=%.1f: %s (%s); flashing",
                self.junction_id,
                t,
                hard[0].kind,
                hard[0].detail,
            )
        return self.tripped
