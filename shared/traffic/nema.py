"""A NEMA dual-ring program written out as the phase sequence edgeward drives.

SUMO's NEMA controller, like a North American cabinet, lists one phase per movement group
(NEMA phases 1-8) and no yellows: it runs one phase of ring 1 together with one of ring 2 on the
same side of a barrier, and times each change interval itself. edgeward's applier drives the
signal states shown together, so this module writes them out: on each side of a barrier, ring 1's
phases paired in order with ring 2's (the lead-lead sequence, 1+5 then 2+6), then a yellow towards
the next green. The applier adds its own red clearance and lengthens the yellows to its limits;
its program check judges the result against the network's conflict matrix, as for any program.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import EdgewardError
from shared.traffic.programs import Phase, with_yellows

NEMA_TYPE = "NEMA"
RING_KEYS = ("ring1", "ring2")
BARRIER_KEYS = ("barrierPhases", "barrier2Phases")
UNUSED = "0"  # an empty slot in a ring
_STRENGTH = {"G": 3, "g": 2, "s": 1}  # what a link shows when two ring phases both name it


class NemaProgramError(EdgewardError):
    """A NEMA program that cannot be written out (a ring names a phase the program lacks)."""


@dataclass(frozen=True)
class RingPhase:
    """One NEMA phase as the network lists it (its `name` is the NEMA phase number)."""

    name: str
    state: str
    duration: float
    min_dur: float
    max_dur: float


def ring_phases(phases: Iterable[Any]) -> list[RingPhase]:
    """A logic's phases as read by sumolib or TraCI (both name them `name`, `state`, `duration`,
    `minDur`, `maxDur`)."""
    return [
        RingPhase(p.name, p.state, float(p.duration), float(p.minDur), float(p.maxDur))
        for p in phases
    ]


def ring_sides(ring: str, barrier_ends: set[str]) -> list[list[str]]:
    """A ring's phases split at its barriers: [[1, 2], [3, 4]] from "1,2,3,4" and ends {2, 4}.

    Without barrier phases the ring's slots split in halves, as in the standard eight-phase
    dual ring.
    """
    slots = [s.strip() for s in ring.split(",") if s.strip()]
    if not barrier_ends & set(slots):
        half = (len(slots) + 1) // 2
        parts = [slots[:half], slots[half:]]
    else:
        parts, side = [], []
        for name in slots:
            side.append(name)
            if name in barrier_ends:
                parts.append(side)
                side = []
        if side:
            parts.append(side)
    return [[n for n in part if n != UNUSED] for part in parts]


def written_out(phases: Sequence[RingPhase], params: Mapping[str, str]) -> list[Phase]:
    """The static program a NEMA logic runs: paired greens, each followed by its yellow."""
    by_name = {p.name: p for p in phases}
    barrier_ends = {
        n.strip() for key in BARRIER_KEYS for n in params.get(key, "").split(",") if n.strip()
    }
    rings = [ring_sides(params.get(key, ""), barrier_ends) for key in RING_KEYS]
    missing = sorted({n for ring in rings for side in ring for n in side} - set(by_name))
    if missing:
        raise NemaProgramError(
            f"the NEMA rings name phases {missing} that the program does not list "
            f"(it lists {sorted(by_name)}); fix ring1/ring2 in the network's tlLogic"
        )
    greens: list[Phase] = []
    for k in range(max(len(r) for r in rings)):
        one, two = (ring[k] if k < len(ring) else [] for ring in rings)
        for i in range(max(len(one), len(two))):
            pair = [by_name[side[min(i, len(side) - 1)]] for side in (one, two) if side]
            green = _together(pair)
            if green.state not in {g.state for g in greens}:
                greens.append(green)
    if not greens:  # no rings given: the phases as listed, in order
        greens = [_together([p]) for p in phases]
    return with_yellows(greens)


def _together(pair: Sequence[RingPhase]) -> Phase:
    """The state two ring phases show at once: each link as the stronger of the two shows it."""
    widths = {len(p.state) for p in pair}
    if len(widths) != 1:
        raise NemaProgramError(
            f"NEMA phases {[p.name for p in pair]} have states of different lengths {widths}"
        )
    state = "".join(
        max(chars, key=lambda c: _STRENGTH.get(c, 0))
        for chars in zip(*(p.state for p in pair), strict=True)
    )

    def longest(p: RingPhase) -> float:
        return p.max_dur if p.max_dur > 0 else p.duration

    return Phase(
        state=state,
        duration=max(longest(p) for p in pair),
        min_dur=max(p.min_dur for p in pair),
        max_dur=max(longest(p) for p in pair),
    )
