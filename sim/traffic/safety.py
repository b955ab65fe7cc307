"""The twin's safety monitor: every state a light showed, judged by the shared oracle.

The rules live in `shared.traffic.oracle` (one oracle for the applier's tests, this monitor and
the gateway's run-time conflict monitor); here the network's `SignalLayout` becomes its conflict
matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.config.traffic import SignalSafety
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.oracle import VIOLATION_KINDS, Violation, count_by_kind
from shared.traffic.oracle import check_sequence as _check
from sim.traffic.network import SignalLayout

__all__ = ["VIOLATION_KINDS", "Violation", "check_sequence", "conflicts_of", "count_by_kind"]


def conflicts_of(layout: SignalLayout) -> ConflictMatrix:
    """The layout's foes and crossings as the oracle's conflict matrix.

    sumolib reports connections no signal controls with link index -1: they are not links.
    """
    n = layout.n_links
    pairs = [(a, b) for a, b in layout.foes if 0 <= a < n and 0 <= b < n]
    return ConflictMatrix.of(n, pairs, [k for k in layout.crossings if 0 <= k < n])


def check_sequence(
    changes: Sequence[tuple[float, str]],
    safety: SignalSafety,
    layout: SignalLayout | None = None,
    *,
    junction_id: str = "",
    end_time: float | None = None,
) -> list[Violation]:
    """Every violation in a sequence of (time, state) changes, in time order."""
    jid = junction_id or (layout.junction_id if layout else "")
    conflicts = conflicts_of(layout) if layout is not None else None
    return _check(changes, safety, conflicts, junction_id=jid, end_time=end_time)
