"""SUMO's own programs under edgeward's safety envelope, for a fair comparison.

netconvert's programs run 3 s yellows straight into the next green and greens shorter than
edgeward's minimum; SUMO's actuated and delay_based keep those. Compared as they are, a
baseline gains the clearance time edgeward spends on every switch. This rewrites every
`tlLogic` of a network so a baseline pays the same: yellow at least `yellow_s`, a red clearance
of `all_red_s` after every yellow (its yellow links red, every other link as it was), greens
(and actuated minDur/maxDur) within [min_green_s, max_green_s]. A phase that releases two foes
together is left out where edgeward leaves it out (`edge.traffic.program.drivable_phases`).
A NEMA logic times its own change intervals from each phase's `yellow` and `red`: those are
lengthened instead.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from edge.traffic.program import drivable_phases
from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety
from shared.errors import EdgewardError
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.nema import NEMA_TYPE
from shared.traffic.network_conflicts import (
    NetworkConflictError,
    conflicts_by_light,
    conflicts_in,
)
from sim.traffic.sumo_bin import parse_xml

_GREEN = "Gg"


class EnvelopeError(EdgewardError):
    """A network's programs cannot be rewritten (unreadable file, phase without a state)."""


def _kind(state: str) -> str:
    if "y" in state or "Y" in state:
        return "yellow"
    if any(c in _GREEN for c in state):
        return "green"
    return "red"


def _fmt(seconds: float) -> str:
    return f"{seconds:g}"


def _green_times(phase: ET.Element, safety: SignalSafety) -> None:
    lo, hi = safety.min_green_s, safety.max_green_s
    dur = min(hi, max(lo, float(phase.get("duration", "0"))))
    phase.set("duration", _fmt(dur))
    if phase.get("minDur") is not None:
        phase.set("minDur", _fmt(min(hi, max(lo, float(phase.get("minDur", "0"))))))
    if phase.get("maxDur") is not None:
        low = float(phase.get("minDur", _fmt(lo)))
        phase.set("maxDur", _fmt(min(hi, max(low, float(phase.get("maxDur", "0"))))))


def _fixed_times(phase: ET.Element, seconds: float) -> None:
    phase.set("duration", _fmt(seconds))
    for attr in ("minDur", "maxDur"):  # a change interval is never stretched or cut
        if phase.get(attr) is not None:
            phase.set(attr, _fmt(seconds))


def _without_foes_released(logic: ET.Element, conflicts: ConflictMatrix) -> None:
    """Drop the phases edgeward would not show; a `next` into one goes to the phase after it."""
    phases = [p for p in logic if p.tag == "phase"]
    program = [PhaseDef.from_state(p.get("state", ""), 1.0) for p in phases]
    kept = drivable_phases(program, conflicts)
    if len(kept) == len(phases):
        return
    index = {old: new for new, old in enumerate(kept)}

    def kept_from(i: int) -> int:
        n = len(phases)
        return next(index[(i + s) % n] for s in range(n) if (i + s) % n in index)

    for i, p in enumerate(phases):
        if i not in index:
            logic.remove(p)
        elif p.get("next"):
            p.set("next", " ".join(str(kept_from(int(t))) for t in p.get("next", "").split()))


def envelope_logic(
    logic: ET.Element, safety: SignalSafety, conflicts: ConflictMatrix | None = None
) -> int:
    """Rewrite one tlLogic in place; returns how many red-clearance phases were inserted."""
    phases = [p for p in logic if p.tag == "phase"]
    for p in phases:
        if not p.get("state"):
            raise EnvelopeError(f"tlLogic {logic.get('id')!r}: a phase has no state; fix the net")
    if logic.get("type") == NEMA_TYPE:  # one phase per movement group, no yellow phases
        for p in phases:
            _green_times(p, safety)
            p.set("yellow", _fmt(max(safety.yellow_s, float(p.get("yellow", "0")))))
            p.set("red", _fmt(max(safety.all_red_s, float(p.get("red", "0")))))
        return 0
    if conflicts is not None:
        _without_foes_released(logic, conflicts)
        phases = [p for p in logic if p.tag == "phase"]
    out: list[ET.Element] = []
    new_index: dict[int, int] = {}
    inserted = 0
    for i, p in enumerate(phases):
        state = p.get("state", "")
        kind = _kind(state)
        new_index[i] = len(out)
        out.append(p)
        if kind == "green":
            _green_times(p, safety)
            continue
        if kind == "red":
            continue
        _fixed_times(p, max(safety.yellow_s, float(p.get("duration", "0"))))
        if safety.all_red_s <= 0:
            continue
        clear = "".join("r" if c in "yY" else c for c in state)
        follower = phases[(i + 1) % len(phases)]
        nxt = follower.get("state", "")
        if _kind(nxt) == "red":  # the program's own all-red follows: give it the clearance
            _fixed_times(follower, max(safety.all_red_s, float(follower.get("duration", "0"))))
            continue
        if not any(b in _GREEN and a not in _GREEN for a, b in zip(state, nxt, strict=False)):
            continue  # nothing turns green (a turn that was already permissive): no clearance
        red = ET.Element("phase", {"duration": _fmt(safety.all_red_s), "state": clear})
        if p.get("minDur") is not None:
            red.set("minDur", _fmt(safety.all_red_s))
            red.set("maxDur", _fmt(safety.all_red_s))
        if p.get("next") is not None:  # the clearance now leads where the yellow led
            red.set("next", p.get("next", ""))
            del p.attrib["next"]
        out.append(red)
        inserted += 1
    for p in out:
        if p.get("next"):
            targets = [new_index.get(int(t), int(t)) for t in p.get("next", "").split()]
            p.set("next", " ".join(str(t) for t in targets))
    for p in phases:
        logic.remove(p)
    for k, p in enumerate(out):
        logic.insert(k, p)  # phases come first in a tlLogic; params stay after them
    return inserted


def light_conflicts(net: Path | ET.Element) -> dict[str, ConflictMatrix]:
    """Each light's conflict matrix in network `net` (a file, or one already parsed); none where
    it gives none (the rest of the rewrite still applies)."""
    try:
        return conflicts_by_light(net) if isinstance(net, Path) else conflicts_in(net)
    except NetworkConflictError:
        return {}


def apply_envelope(net_in: Path, net_out: Path, safety: SignalSafety) -> Path:
    """Write `net_out`: `net_in` with every traffic-light program under the envelope."""
    try:
        tree = parse_xml(net_in)
    except (ET.ParseError, OSError, EOFError) as exc:
        raise EnvelopeError(f"network {net_in}: cannot read it ({exc}); check the file") from exc
    matrices = light_conflicts(tree.getroot())
    for logic in tree.getroot().iter("tlLogic"):
        envelope_logic(logic, safety, matrices.get(logic.get("id", "")))
    net_out.parent.mkdir(parents=True, exist_ok=True)
    tree.write(net_out, encoding="UTF-8", xml_declaration=True)
    return net_out
