"""A junction's program as the applier drives it: checked, with its red-clearance phases added.

The junction's own phases come first, in their own order. After them, one clearance phase per
yellow phase: the same state with its yellows turned red. The applier shows it after that
yellow whenever a link is about to turn green while a foe's yellow ended less than
`all_red_s` ago (`safety_clock.ClearanceClock`), so red clearance holds for every program,
whether or not it has all-red phases of its own (netconvert's often go from yellow straight
into the conflicting green).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge.traffic.signal_port import PhaseDef
from shared.errors import EdgewardError
from shared.traffic.conflicts import ConflictMatrix

_EPS = 1e-6
_STOP = "rs"
_GREEN = "Gg"
_YELLOW = "yY"


class ProgramError(EdgewardError):
    """A junction's static program the applier cannot drive safely."""


@dataclass(frozen=True)
class DrivenProgram:
    """The phases the applier installs on the controller."""

    phases: tuple[PhaseDef, ...]
    own: int  # phases[:own] are the junction's own program
    clearance_of: dict[int, int]  # yellow phase -> its clearance phase

    def origin(self, i: int) -> int:
        """The junction's own phase an index stands for (a clearance: its yellow)."""
        if i < self.own:
            return i
        return next(y for y, c in self.clearance_of.items() if c == i)


def validate_program(
    junction_id: str, program: Sequence[PhaseDef], conflicts: ConflictMatrix | None
) -> None:
    """Refuse a program the applier cannot make safe, naming the phase that is wrong."""
    if not program:
        raise ProgramError(f"junction {junction_id}: its signal program has no phases")
    if not any(p.kind == "green" for p in program):
        raise ProgramError(
            f"junction {junction_id}: its signal program has no green phase; "
            "check the network's tlLogic"
        )
    lengths = {len(p.state) for p in program}
    if len(lengths) != 1:
        raise ProgramError(
            f"junction {junction_id}: phase states have different lengths {sorted(lengths)}"
        )
    width = lengths.pop()
    if conflicts is not None and conflicts.n_links != width:
        raise ProgramError(
            f"junction {junction_id}: its program has {width} links, the network's conflict "
            f"matrix {conflicts.n_links}; the program and the network file do not match"
        )
    crossings = conflicts.crossings if conflicts is not None else frozenset()
    for i, phase in enumerate(program):
        if conflicts is not None:
            both = protected_foes(phase.state, conflicts)
            if both:
                raise ProgramError(
                    f"junction {junction_id}: phase {i} ({phase.state}) gives protected green to "
                    f"links {both[0][0]} and {both[0][1]}, which cross or merge; fix the program "
                    "(one of them 'g', or in another phase)"
                )
        j = (i + 1) % len(program)
        step = (
            f"junction {junction_id}: phase {i} ({phase.state}) -> phase {j} ({program[j].state})"
        )
        for k, (x, y) in enumerate(zip(phase.state, program[j].state, strict=True)):
            if k in crossings:
                continue  # a walk signal goes to don't-walk without yellow
            if x in _GREEN and y in _STOP:
                raise ProgramError(
                    f"{step} takes link {k} from green to red without yellow; add a yellow phase"
                )
            if conflicts is not None and x not in _GREEN and y in _GREEN:
                yellow = [f for f in sorted(conflicts.foes_of(k)) if program[j].state[f] in _YELLOW]
                if yellow:
                    # no clearance can be put inside a phase: the green must wait for a later one
                    raise ProgramError(
                        f"{step} starts link {k}'s green while its foe {yellow[0]} is yellow; "
                        "a green waits for its foes' yellow and red clearance: give it green "
                        "in a later phase"
                    )


def protected_foes(state: str, conflicts: ConflictMatrix) -> list[tuple[int, int]]:
    """Pairs of foe links that `state` gives protected green ('G') together."""
    return [(a, b) for a, b in sorted(conflicts.foes) if state[a] == "G" == state[b]]


def drivable_phases(program: Sequence[PhaseDef], conflicts: ConflictMatrix | None) -> list[int]:
    """The indices of the phases the applier may show.

    All of them, unless some phases give protected green to two foes. netconvert writes such
    phases for real junctions: in a divided road's joined cluster, opposite protected left
    turns whose paths pass within a vehicle's width are foes in the junction's own table. Those
    phases are left out when what remains is still a program `validate_program` accepts and
    every link the program serves still gets green in it (here, the left turns' permissive 'g'
    in the through phases). Otherwise every index comes back and `validate_program` refuses
    the program, naming the phase.
    """
    every = list(range(len(program)))
    if conflicts is None or any(len(p.state) != conflicts.n_links for p in program):
        return every
    kept = [i for i in every if not protected_foes(program[i].state, conflicts)]
    if len(kept) == len(every):
        return every
    rest = [program[i] for i in kept]

    def served(phases: Sequence[PhaseDef]) -> set[int]:
        return {k for p in phases for k, c in enumerate(p.state) if c in _GREEN}

    if served(program) - served(rest):
        return every
    try:
        validate_program("", rest, conflicts)
    except ProgramError:
        return every
    return kept


def left_out_phases(
    program: Sequence[PhaseDef], conflicts: ConflictMatrix | None
) -> dict[int, str]:
    """The phases `drivable_phases` leaves out, each with why."""
    if conflicts is None:
        return {}
    kept = set(drivable_phases(program, conflicts))
    return {
        i: f"phase {i} ({p.state}) releases foe links "
        + ", ".join(f"{a} and {b}" for a, b in protected_foes(p.state, conflicts))
        + " together"
        for i, p in enumerate(program)
        if i not in kept
    }


def drive(program: Sequence[PhaseDef], all_red_s: float) -> DrivenProgram:
    """The junction's program plus one clearance phase per yellow phase, appended."""
    phases = list(program)
    clearance_of: dict[int, int] = {}
    for i, p in enumerate(program):
        if p.kind != "yellow":
            continue
        state = "".join("r" if c in _YELLOW else c for c in p.state)
        clearance_of[i] = len(phases)
        # kind "red" whatever it still shows green: it is timed as red clearance
        phases.append(PhaseDef(state, all_red_s, all_red_s, all_red_s, "red"))
    return DrivenProgram(tuple(phases), len(program), clearance_of)


def _jump_is_safe(a: str, b: str, into_green: bool) -> bool:
    """May the controller go from state `a` straight to `b` (not the program's next phase)?

    Only out of a clearance phase: into a green only from an all-red phase (red clearance
    already served); into another clearance phase only if every green link turns yellow or
    stays green, every yellow link turns red (its yellow ran in full) and no red link wakes up.
    """
    if into_green:
        return all(x in _STOP for x in a)
    for x, y in zip(a, b, strict=True):
        if x in _GREEN and y not in _GREEN + _YELLOW:
            return False
        if x in _YELLOW and y not in _STOP:
            return False
        if x in _STOP and y not in _STOP:
            return False
    return True


def _staggered(before: str, state: str) -> bool:
    """Does `state` show yellows of two ages: some begun before it, some begun with it?

    A jump out of it ends all its yellows at once, so the new ones would make the old ones run
    past the 6 s maximum: only the program's own order (old ones red first) leaves it.
    """
    yellows = [k for k, c in enumerate(state) if c in _YELLOW]
    old = [k for k in yellows if before[k] in _YELLOW]
    return bool(old) and len(old) < len(yellows)


def clearance_paths(
    program: Sequence[PhaseDef], duration: Callable[[int], float]
) -> dict[tuple[int, int], list[int]]:
    """(from green, to green) -> the fastest safe chain of clearance phases between them.

    A green always leaves by the program's next phase; inside the clearance the chain follows
    the program or jumps where `_jump_is_safe` allows. Greens no chain reaches are left out.
    """
    n = len(program)
    greens = [i for i, p in enumerate(program) if p.kind == "green"]
    out: dict[tuple[int, int], list[int]] = {}
    for g in greens:
        first = (g + 1) % n
        if program[first].kind == "green":
            if first != g:
                out[(g, first)] = []
            continue
        best: dict[int, tuple[float, list[int]]] = {first: (duration(first), [first])}
        frontier = [first]
        while frontier:
            frontier.sort(key=lambda i: best[i][0])
            s = frontier.pop(0)
            cost, path = best[s]
            before = program[path[-2]].state if len(path) > 1 else program[g].state
            staggered = _staggered(before, program[s].state)
            for t in range(n):
                if t == g:
                    continue
                natural = t == (s + 1) % n
                into_green = program[t].kind == "green"
                if not natural and (
                    staggered or not _jump_is_safe(program[s].state, program[t].state, into_green)
                ):
                    continue
                if into_green:
                    if (g, t) not in out or cost < sum(duration(i) for i in out[(g, t)]) - _EPS:
                        out[(g, t)] = path
                    continue
                c = cost + duration(t)
                if t not in best or c < best[t][0] - _EPS:
                    best[t] = (c, [*path, t])
                    frontier.append(t)
    return out


def follow_on_greens(program: Sequence[PhaseDef]) -> dict[int, int]:
    """Greens that only continue movements of the green before them (a protected turn after the
    through green that let it go permissive): follow-on green -> that parent green."""
    greens = [i for i, p in enumerate(program) if p.kind == "green"]
    out: dict[int, int] = {}
    if len(greens) < 3:
        return out
    for n, j in enumerate(greens):
        parent = greens[n - 1]
        moving = {i for i, c in enumerate(program[j].state) if c in _GREEN}
        before = {i for i, c in enumerate(program[parent].state) if c in _GREEN}
        if moving and moving <= before and parent not in out:
            out[j] = parent
    return out
