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
    allow_skips: bool = False,
    link_max_green: bool = False,
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
                problems.extend(
                    _skip_problems(where, phase, program[nxt], nxt)
                    if allow_skips
                    else [f"{where}: next phase {nxt} breaks program order"]
                )
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
    if link_max_green:
        problems.extend(_long_runs(program, switches, end_time, safety, tolerance_s))
    return problems


def _long_runs(
    program: Sequence[PhaseDef],
    switches: Sequence[tuple[float, int]],
    end_time: float,
    safety: SignalSafety,
    tolerance_s: float,
) -> list[str]:
    """Protected greens of one link across several phases stay within the maximum green."""
    out = []
    width = len(program[0].state)
    for k in range(width):
        if all(p.state[k] == "G" for p in program):
            continue  # never stops (a free turn): not held to a maximum
        since: float | None = None
        for t, p in [*switches, (end_time, -1)]:
            on = p >= 0 and program[p].state[k] == "G"
            if since is not None and not on:
                if t - since > safety.max_green_s + tolerance_s + _EPS:
                    out.append(f"link {k} protected green from t={since:.1f}s to {t:.1f}s")
                since = None
            elif since is None and on:
                since = t
    return out


def _skip_problems(where: str, phase: PhaseDef, nxt: PhaseDef, index: int) -> list[str]:
    """A jump out of program order (acyclic control) is safe only between clearance phases.

    A green is left only by its program's next phase; a green is entered by a jump only from
    an all-red phase; between clearance phases no yellow runs twice and no red link wakes up.
    """
    if phase.kind == "green":
        return [f"{where}: green left for phase {index} instead of its own clearance"]
    if nxt.kind == "green":
        if any(c not in _STOP for c in phase.state):
            return [f"{where}: jumped to green phase {index} without an all-red clearance"]
        return []
    out = []
    for link, (a, b) in enumerate(zip(phase.state, nxt.state, strict=True)):
        if a in "yY" and b not in _STOP:
            out.append(f"{where}: link {link} went {a}->{b} on a jump (yellow must end in red)")
        if a in _STOP and b not in _STOP:
            out.append(f"{where}: link {link} went {a}->{b} inside a clearance")
    return out
