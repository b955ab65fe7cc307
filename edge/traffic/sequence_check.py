"""Check a recorded signal sequence against SignalSafety: the oracle of the applier's tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from edge.traffic.applier import YELLOW_MAX_S, max_green, min_green
from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety

_EPS = 1e-6
_GREEN = "Gg"
_STOP = "rs"


def check_sequence(
    program: Sequence[PhaseDef],
    switches: Sequence[tuple[float, int]],
    end_time: float,
    *,
    safety: SignalSafety,
    has_crossing: Callable[[int], bool],
    tolerance_s: float,
) -> list[str]:
    """Violations in a sequence of (time, phase) switches; empty means safe.

    Lower bounds (minimum green, yellow, red clearance, pedestrian time) are exact; upper bounds
    (maximum green, yellow at most 6 s) allow `tolerance_s`, the longest gap between the
    controller's steps, since a switch can only happen on a step. The first interval began
    before recording started, so only its upper bounds are checked.
    """
    problems: list[str] = []
    n = len(program)
    for k, (t, p) in enumerate(switches):
        phase = program[p]
        complete = k + 1 < len(switches)
        end = switches[k + 1][0] if complete else end_time
        length = end - t
        where = f"phase {p} ({phase.state}) at t={t:.1f}s lasted {length:.1f}s"
        if complete:
            nxt = switches[k + 1][1]
            if nxt != (p + 1) % n:
                problems.append(f"{where}: next phase {nxt} breaks program order")
            for link, (a, b) in enumerate(zip(phase.state, program[nxt].state, strict=True)):
                if a in _GREEN and b in _STOP:
                    problems.append(f"{where}: link {link} went {a}->{b} without yellow")
        check_lower = complete and k > 0
        if phase.kind == "green":
            crossing = has_crossing(p)
            low, high = min_green(safety, crossing), max_green(safety, crossing)
            if check_lower and length + _EPS < low:
                problems.append(f"{where}: green shorter than {low:.1f}s")
            if length > high + tolerance_s + _EPS:
                problems.append(f"{where}: green longer than {high:.1f}s")
        elif phase.kind == "yellow":
            if check_lower and length + _EPS < safety.yellow_s:
                problems.append(f"{where}: yellow shorter than {safety.yellow_s:.1f}s")
            if length > YELLOW_MAX_S + tolerance_s + _EPS:
                problems.append(f"{where}: yellow longer than {YELLOW_MAX_S:.1f}s")
        elif check_lower and length + _EPS < safety.all_red_s:
            problems.append(f"{where}: red clearance shorter than {safety.all_red_s:.1f}s")
    return problems
