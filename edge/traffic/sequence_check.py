"""Check a recorded signal sequence against SignalSafety: the oracle of the applier's tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from edge.traffic.applier import (
    YELLOW_MAX_S,
    max_green,
    min_green,
    red_duration,
    yellow_duration,
)
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
    return problems


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


def check_links(
    program: Sequence[PhaseDef],
    switches: Sequence[tuple[float, int]],
    end_time: float,
    *,
    safety: SignalSafety,
    has_crossing: Callable[[int], bool],
    tolerance_s: float,
) -> list[str]:
    """Violations judged link by link on the emitted state strings; empty means safe.

    A link's green is its continuous run of G or g, whatever phases it spans. Rules: a green
    ends in yellow, a yellow in red; a green that began while recording lasts at least
    `min_green_s`; a green run lasts at most `max_green_s` (links green in every phase of the
    program never stop and are exempt), or the shortest run its phases allow where their own
    minimums (pedestrian time) add up to more; a yellow lasts 3-6 s. Red clearance is a phase
    (all-red) and `check_sequence` times it. Each switch can land up to `tolerance_s` late (one
    controller step), so upper bounds allow that once per phase of the run.
    """
    if not switches:
        return []
    problems: list[str] = []
    width = len(program[0].state)
    timeline = [*switches, (end_time, -1)]
    for k in range(width):
        free = all(p.state[k] in _GREEN for p in program)
        run_start = switches[0][0]
        run_phases: list[int] = []
        letter = ""
        for n, (t, p) in enumerate(timeline):
            new = "" if p < 0 else program[p].state[k]
            kind = _link_kind(new)
            old_kind = _link_kind(letter)
            if n > 0 and (p < 0 or kind != old_kind):
                length = t - run_start
                where = f"link {k} {old_kind} from t={run_start:.1f}s to {t:.1f}s ({length:.1f}s)"
                problems += _run_problems(
                    where,
                    old_kind,
                    length,
                    started=run_start > switches[0][0],
                    ended=p >= 0,
                    allowed_max=_longest_allowed(program, run_phases, safety, has_crossing),
                    slack=tolerance_s * len(run_phases),
                    safety=safety,
                    free=free,
                )
                if p >= 0:
                    if old_kind == "green" and kind == "red":
                        problems.append(f"{where}: went {letter}->{new} without yellow")
                    if old_kind == "yellow" and kind != "red":
                        problems.append(f"{where}: went {letter}->{new}; a yellow ends in red")
                run_start, run_phases = t, []
            if p >= 0:
                run_phases.append(p)
            letter = new
    return problems


def _link_kind(letter: str) -> str:
    if letter in ("G", "g"):
        return "green"
    if letter in ("y", "Y"):
        return "yellow"
    return "red"


def _longest_allowed(
    program: Sequence[PhaseDef],
    phases: Sequence[int],
    safety: SignalSafety,
    has_crossing: Callable[[int], bool],
) -> float:
    """Maximum green, unless the run's phases cannot be shorter than that (minimums win)."""
    shortest = 0.0
    for p in phases:
        phase = program[p]
        if phase.kind == "green":
            shortest += min_green(safety, has_crossing(p))
        elif phase.kind == "yellow":
            shortest += yellow_duration(safety, phase.duration_s)
        else:
            shortest += red_duration(safety, phase.duration_s)
    return max(safety.max_green_s, shortest)


def _run_problems(
    where: str,
    kind: str,
    length: float,
    *,
    started: bool,
    ended: bool,
    allowed_max: float,
    slack: float,
    safety: SignalSafety,
    free: bool,
) -> list[str]:
    out = []
    if kind == "green":
        if started and ended and length + _EPS < safety.min_green_s:
            out.append(f"{where}: green shorter than {safety.min_green_s:.1f}s")
        if not free and length > allowed_max + slack + _EPS:
            out.append(f"{where}: green longer than {allowed_max:.1f}s")
    elif kind == "yellow":
        if started and ended and length + _EPS < safety.yellow_s:
            out.append(f"{where}: yellow shorter than {safety.yellow_s:.1f}s")
        if length > YELLOW_MAX_S + slack + _EPS:
            out.append(f"{where}: yellow longer than {YELLOW_MAX_S:.1f}s")
    return out
