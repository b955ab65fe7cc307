"""The safe applier: the only code that switches a junction's signals, always within SignalSafety.

Whatever asks for timings (a cloud plan, the local actuated logic, the fixed schedule) only sets
per-phase green targets, or per-phase priorities (pressures). With targets the applier walks the
junction's own program in order (green -> its yellow -> its red clearance -> next green). With
priorities it is acyclic: after the minimum green it ends the green once another phase clearly
outranks it and goes to that phase through clearance phases of the program chosen so that no
link ever skips its yellow or its red clearance (`clearance_paths`). Every phase duration is
clamped to the safety limits at the moment the phase begins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edge.traffic.signal_port import PhaseDef, SignalPort
from shared.config.traffic import SignalSafety
from shared.errors import EdgewardError
from shared.messages.traffic import SignalPlan

log = logging.getLogger(__name__)

YELLOW_MAX_S = 6.0  # the yellow change interval is 3-6 s; SignalSafety bounds the minimum
_EPS = 1e-6
SWITCH_MARGIN = 1.0  # priority (vehicles per lane) another phase needs above the serving one
# An acyclic green lasts at least its planned green times this: every switch costs a whole
# clearance, and in the twin's rush hour longer greens won (greens of ~40 s on the 4x4 grid).
SLOT_SCALE = 1.4
MAX_WAIT_S = 120.0  # an acyclic junction serves any green that has waited this long
AGE_PER_S = 1.0 / 30.0  # priority a waiting phase gains per second unserved: nobody starves
_STOP = "rs"
_GREEN = "Gg"


@dataclass(frozen=True)
class AcyclicPolicy:
    """How acyclic control chooses and sizes greens: policy, not safety (every path is safe)."""

    slot_scale: float = SLOT_SCALE  # shortest acyclic green = planned green x this
    # a through green that ran at least this long is followed by its protected turn (0: always);
    # a shorter one found its turns gaps in light opposing flow
    turn_after_s: float = 0.0
    age_per_s: float = AGE_PER_S  # priority a waiting green gains per second unserved


_YELLOW = "yY"


class PlanRejectedError(EdgewardError):
    """A plan that cannot be applied to this junction (wrong junction, unknown phases)."""


class ProgramError(EdgewardError):
    """A junction's static program the applier cannot drive safely."""


@dataclass(frozen=True)
class Switch:
    """The applier put the junction into `phase` at `time`."""

    time: float
    phase: int


def validate_program(junction_id: str, program: list[PhaseDef]) -> None:
    """Refuse programs without a green phase or with inconsistent state lengths."""
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


def clearance_paths(
    program: list[PhaseDef], duration: Callable[[int], float]
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
            for t in range(n):
                if t == g:
                    continue
                natural = t == (s + 1) % n
                into_green = program[t].kind == "green"
                if not natural and not _jump_is_safe(
                    program[s].state, program[t].state, into_green
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


def follow_on_greens(program: list[PhaseDef]) -> dict[int, int]:
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


def min_green(safety: SignalSafety, has_crossing: bool) -> float:
    """Shortest allowed green: pedestrians need their walk time where a crossing exists."""
    return max(safety.min_green_s, safety.pedestrian_min_s if has_crossing else 0.0)


def max_green(safety: SignalSafety, has_crossing: bool) -> float:
    """Longest allowed green; never below the minimum (pedestrian time wins a conflict)."""
    return max(safety.max_green_s, min_green(safety, has_crossing))


def yellow_duration(safety: SignalSafety, programmed_s: float) -> float:
    return min(YELLOW_MAX_S, max(safety.yellow_s, programmed_s))


def red_duration(safety: SignalSafety, programmed_s: float) -> float:
    return max(safety.all_red_s, programmed_s)


class SafeApplier:
    """Drives one SignalPort. Call `step()` every simulation step (or every second live)."""

    def __init__(
        self, port: SignalPort, safety: SignalSafety, policy: AcyclicPolicy | None = None
    ) -> None:
        self.port = port
        self.safety = safety
        self.policy = policy or AcyclicPolicy()
        self.program = port.phases()
        validate_program(port.junction_id, self.program)
        n = len(self.program)
        self.green_phases = [i for i, p in enumerate(self.program) if p.kind == "green"]
        self._crossing = [port.has_pedestrian_crossing(i) for i in range(n)]
        self.fixed_greens = {
            i: self._clamp_green(i, self.program[i].duration_s) for i in self.green_phases
        }
        self._targets: dict[int, float] = dict(self.fixed_greens)
        self._alignment: tuple[float, float] | None = None  # (cycle_s, offset_s)
        self.source = "fixed"
        now = port.time()
        self._phase = port.current_phase() % n
        self._priorities: dict[int, float] | None = None
        self._paths = clearance_paths(self.program, lambda i: self._duration_for(i, now))
        # Links that are green (G or g) in some phases and not in others: a link's continuous
        # green may span several phases (green -> green, or green through another movement's
        # yellow), so each green is cut short where needed to end that run within max green.
        width = len(self.program[0].state)
        self._held = [
            k
            for k in range(width)
            if any(p.state[k] in _GREEN for p in self.program)
            and any(p.state[k] not in _GREEN for p in self.program)
        ]
        self._green_since: dict[int, float] = {}
        self._tail = self._program_order_tails()
        self._exit = self._worst_exits()
        # Take control now: hold the current phase (so the controller stops advancing on its
        # own) and count it from now, so its minimum holds in full.
        port.set_phase(self._phase)
        self._entered = now
        self._mark(now)
        self._cap = float("inf")  # set by _begin: the longest the current green may run
        self._duration = self._begin(self._phase, now)
        self.switches: list[Switch] = [Switch(now, self._phase)]
        self._route: list[int] = []  # phases still to show on the way to a chosen green
        self._served_at = dict.fromkeys(self.green_phases, now)
        self._follow_on = follow_on_greens(self.program)
        self._turn_after = {
            parent: j for j, parent in self._follow_on.items() if (parent, j) in self._paths
        }
        self._follow_on = {j: p for j, p in self._follow_on.items() if self._turn_after.get(p) == j}

    # -- what callers may change --------------------------------------------------------------

    @property
    def targets(self) -> dict[int, float]:
        """Green target per green phase index, as currently enforced."""
        return dict(self._targets)

    def set_targets(
        self,
        greens: Mapping[int, float],
        source: str,
        alignment: tuple[float, float] | None = None,
    ) -> dict[int, float]:
        """Adopt new green targets, clamped and rate-limited; returns what will be applied."""
        unknown = sorted(set(greens) - set(self.green_phases))
        if unknown:
            raise PlanRejectedError(
                f"junction {self.port.junction_id}: phases {unknown} are not green phases of its "
                f"program (green phases: {self.green_phases})"
            )
        limit = self.safety.max_plan_change_s
        for i in self.green_phases:
            previous = self._targets[i]
            wanted = float(greens.get(i, previous))
            limited = min(previous + limit, max(previous - limit, wanted))
            self._targets[i] = self._clamp_green(i, limited)
        self._alignment = alignment
        self.source = source
        return dict(self._targets)

    def set_priorities(self, priorities: Mapping[int, float] | None, source: str) -> None:
        """Drive acyclically by these per-phase priorities (None: back to the program's order)."""
        if priorities is not None:
            unknown = sorted(set(priorities) - set(self.green_phases))
            if unknown:
                raise PlanRejectedError(
                    f"junction {self.port.junction_id}: phases {unknown} are not green phases "
                    f"of its program (green phases: {self.green_phases})"
                )
            priorities = {int(k): float(v) for k, v in priorities.items()}
        self._priorities = priorities
        self.source = source

    @property
    def acyclic(self) -> bool:
        return self._priorities is not None

    def greens_from_plan(self, plan: SignalPlan) -> dict[int, float]:
        """The plan's greens as a phase->seconds map, or PlanRejectedError if it is not ours."""
        if plan.junction_id != self.port.junction_id:
            raise PlanRejectedError(
                f"plan {plan.plan_id} is for junction {plan.junction_id!r}, "
                f"this gateway drives {self.port.junction_id!r}"
            )
        greens = {g.phase_index: g.green_s for g in plan.greens}
        bad = sorted(set(greens) - set(self.green_phases))
        if bad:
            raise PlanRejectedError(
                f"plan {plan.plan_id} for {plan.junction_id}: phases {bad} are not green phases "
                f"(green phases: {self.green_phases}); the coordinator's topology is out of date"
            )
        return greens

    def retarget_current(self, total_s: float) -> float:
        """Extend or end early the current green (live actuation); returns its new length.

        Clamped like any green, so it never ends before its minimum (it ends at the next step
        if that has passed) nor runs past its maximum. Other phases are left alone.
        """
        if self.program[self._phase].kind != "green":
            return self._duration
        wanted = min(self._clamp_green(self._phase, total_s), self._cap)
        self._duration = max(self._floor(self._phase), wanted)
        return self._duration

    @property
    def phase_elapsed(self) -> float:
        return self.port.time() - self._entered

    # -- the clock ----------------------------------------------------------------------------

    @property
    def phase(self) -> int:
        return self._phase

    @property
    def phase_duration(self) -> float:
        """How long the current phase was given when it began."""
        return self._duration

    def step(self) -> None:
        """Advance to the next phase in program order once the current one has run its time."""
        now = self.port.time()
        actual = self.port.current_phase()
        if actual != self._phase:
            # Someone else switched the controller: follow it and restart the clock conservatively.
            log.warning(
                "junction %s: controller is in phase %d, applier expected %d; following it",
                self.port.junction_id,
                actual,
                self._phase,
            )
            self._phase = actual % len(self.program)
            self._entered = now
            self._route = []
            self._green_since.clear()
            self._mark(now)
            self._duration = self._begin(self._phase, now)
            self.switches.append(Switch(now, self._phase))
            return
        elapsed = now - self._entered
        if self.program[self._phase].kind == "green":
            self._served_at[self._phase] = now
            if self._priorities is not None and not self._route:
                current = self._phase
                # a link's green run may carry on past this green: end in time for all of it
                due = any(
                    now - since + self._exit[(current, k)] + _EPS >= self.safety.max_green_s
                    for k, since in self._green_since.items()
                    if (current, k) in self._exit
                )
                due = due and elapsed + _EPS >= self._floor(current)
                if current in self._follow_on:
                    # a protected turn after its parent green: its planned time, then choose
                    if elapsed + _EPS < self._duration and not due:
                        return
                    target = self._choose(now, elapsed, forced=True)
                else:
                    if elapsed + _EPS < self._slot(current) and not due:
                        return
                    target = self._choose(now, elapsed, forced=due)
                    turn = self._turn_after.get(current)
                    long_enough = elapsed >= self.policy.turn_after_s
                    if target is not None and turn is not None and long_enough:
                        target = turn  # its follow-on turn phase runs before anything else
                if target is not None:
                    self._route = [*self._paths[(current, target)], target]
                elif elapsed + _EPS < self._ceiling(current) and not due:
                    return
            elif elapsed + _EPS < self._duration:
                return
        elif elapsed + _EPS < self._duration:
            return
        nxt = self._route.pop(0) if self._route else (self._phase + 1) % len(self.program)
        self.port.set_phase(nxt)
        self._phase = nxt
        self._entered = now
        self._mark(now)
        self._duration = self._begin(nxt, now)
        self.switches.append(Switch(now, nxt))

    def _mark(self, now: float) -> None:
        """Track when each held link's current green run (G or g) began."""
        state = self.program[self._phase].state
        for k in self._held:
            if state[k] in _GREEN:
                self._green_since.setdefault(k, now)
            else:
                self._green_since.pop(k, None)

    # -- per-link maximum green -----------------------------------------------------------------

    def _shortest(self, i: int) -> float:
        """The least time phase i can take once begun."""
        if self.program[i].kind == "green":
            return self._floor(i)
        return self._duration_for(i, 0.0)

    def _program_order_tails(self) -> dict[tuple[int, int], float]:
        """(green, link) -> least time the link stays green after that green, in program order."""
        n = len(self.program)
        out: dict[tuple[int, int], float] = {}
        for i in self.green_phases:
            for k in self._held:
                if self.program[i].state[k] not in _GREEN:
                    continue
                tail, j = 0.0, (i + 1) % n
                while self.program[j].state[k] in _GREEN and j != i:
                    tail += self._shortest(j)
                    j = (j + 1) % n
                out[(i, k)] = tail
        return out

    def _worst_exits(self) -> dict[tuple[int, int], float]:
        """(green, link) -> longest the link can stay green after that green when acyclic.

        Over every way out (the clearance paths, and the program's own order), with each later
        green where the link is still green at its minimum. A way that could keep the link
        green forever counts as max green: that green then ends at its minimum.
        """
        n = len(self.program)
        routes: dict[int, list[tuple[list[int], int]]] = {g: [] for g in self.green_phases}
        for (g, t), path in self._paths.items():
            routes[g].append((path, t))
        for g in self.green_phases:
            path, j = [], (g + 1) % n
            while self.program[j].kind != "green":
                path.append(j)
                j = (j + 1) % n
            routes[g].append((path, j))
        memo: dict[tuple[int, int], float] = {}

        def worst(g: int, k: int, seen: frozenset[int]) -> float:
            if g in seen:
                return self.safety.max_green_s
            if (g, k) in memo:
                return memo[(g, k)]
            longest = 0.0
            for path, t in routes[g]:
                run, through = 0.0, True
                for i in path:
                    if self.program[i].state[k] not in _GREEN:
                        through = False
                        break
                    run += self._shortest(i)
                if through and self.program[t].state[k] in _GREEN:
                    run += self._floor(t) + worst(t, k, seen | {g})
                longest = max(longest, run)
            memo[(g, k)] = longest
            return longest

        return {
            (g, k): worst(g, k, frozenset())
            for g in self.green_phases
            for k in self._held
            if self.program[g].state[k] in _GREEN
        }

    def _link_cap(self, i: int, now: float) -> float:
        """Longest phase i may run so every held link green in it ends its run in max green."""
        cap = float("inf")
        for k, since in self._green_since.items():
            if (i, k) in self._tail:
                cap = min(cap, self.safety.max_green_s - (now - since) - self._tail[(i, k)])
        return cap

    def _begin(self, i: int, now: float) -> float:
        """Duration of phase i beginning now: a green within its limits and its links' runs."""
        seconds = self._duration_for(i, now)
        if self.program[i].kind != "green":
            return seconds
        self._cap = self._link_cap(i, now)
        return max(self._floor(i), min(seconds, self._cap))

    def _choose(self, now: float, elapsed: float, forced: bool = False) -> int | None:
        """The green to go to next, or None to keep serving the current one."""
        assert self._priorities is not None
        current = self._phase
        options = [
            k for k in self.green_phases if (current, k) in self._paths and k not in self._follow_on
        ]
        if not options:
            return None

        def score(k: int) -> float:
            waited = now - self._served_at[k]
            return self._priorities.get(k, 0.0) + self.policy.age_per_s * waited  # type: ignore[union-attr]

        best = max(options, key=score)
        starving = [k for k in options if k != current and now - self._served_at[k] >= MAX_WAIT_S]
        if starving:  # whatever the pressures say, nobody waits longer than this
            return max(starving, key=lambda k: now - self._served_at[k])
        if forced or elapsed + _EPS >= self._ceiling(current):
            return best
        if score(best) > self._priorities.get(current, 0.0) + SWITCH_MARGIN:
            return best
        return None

    def _floor(self, i: int) -> float:
        return min_green(self.safety, self._crossing[i])

    def _slot(self, i: int) -> float:
        """Shortest acyclic green: its planned green scaled, within the safety limits."""
        return self._clamp_green(i, self.policy.slot_scale * self._targets[i])

    def _ceiling(self, i: int) -> float:
        return max_green(self.safety, self._crossing[i])

    # -- durations ----------------------------------------------------------------------------

    def _clamp_green(self, i: int, seconds: float) -> float:
        crossing = self._crossing[i]
        return min(max_green(self.safety, crossing), max(min_green(self.safety, crossing), seconds))

    def _duration_for(self, i: int, now: float) -> float:
        phase = self.program[i]
        if phase.kind == "yellow":
            return yellow_duration(self.safety, phase.duration_s)
        if phase.kind == "red":
            return red_duration(self.safety, phase.duration_s)
        seconds = self._targets[i]
        if self._alignment is not None and i == self.green_phases[-1]:
            seconds += self._alignment_correction(i, now, seconds)
        return self._clamp_green(i, seconds)

    def _alignment_correction(self, last_green: int, now: float, seconds: float) -> float:
        """Stretch or trim the cycle's last green so the next cycle starts on the plan's offset."""
        cycle_s, offset_s = self._alignment or (0.0, 0.0)
        if cycle_s <= 0:
            return 0.0
        start = now + seconds
        j = (last_green + 1) % len(self.program)
        while j != self.green_phases[0]:
            p = self.program[j]
            if p.kind == "yellow":
                start += yellow_duration(self.safety, p.duration_s)
            elif p.kind == "red":
                start += red_duration(self.safety, p.duration_s)
            else:
                start += self._targets[j]
            j = (j + 1) % len(self.program)
        error = (offset_s - start) % cycle_s
        if error > cycle_s / 2:
            error -= cycle_s
        bound = 0.25 * seconds  # coordination may bend a green, never dominate it
        return max(-bound, min(bound, error))
