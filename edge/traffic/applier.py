"""The safe applier: the only code that switches a junction's signals, always within SignalSafety.

Whatever asks for timings (a cloud plan, the local actuated logic, the fixed schedule) only sets
per-phase green targets, or per-phase priorities (pressures). With targets the applier walks the
junction's own program in order (green -> its yellow -> its red clearance -> next green). With
priorities it is acyclic: after the minimum green it ends the green once another phase clearly
outranks it and goes to that phase through clearance phases of the program chosen so that no
link ever skips its yellow or its red clearance (`clearance_paths`). Every phase duration is
clamped to the safety limits at the moment the phase begins; yellow is timed per link, not per
phase (`yellow_clock.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from edge.traffic.acyclic import PRODUCTION_POLICY, AcyclicPolicy, choose_green, for_junction
from edge.traffic.program import ProgramError, clearance_paths, drive, validate_program
from edge.traffic.routes import Routes
from edge.traffic.safety_clock import (
    ClearanceClock,
    max_green,
    min_green,
    program_order_tails,
    red_duration,
    worst_exits,
    yellow_duration,
)
from edge.traffic.signal_port import PhaseDef, SignalPort
from edge.traffic.yellow_clock import YellowClock
from shared.config.traffic import SignalSafety
from shared.errors import EdgewardError
from shared.messages.traffic import SignalPlan
from shared.traffic.conflicts import ConflictMatrix

__all__ = ["AcyclicPolicy", "PlanRejectedError", "ProgramError", "SafeApplier", "Switch"]

log = logging.getLogger(__name__)

_EPS = 1e-6
_GREEN = "Gg"


class PlanRejectedError(EdgewardError):
    """A plan that cannot be applied to this junction (wrong junction, unknown phases)."""


@dataclass(frozen=True)
class Switch:
    """The applier put the junction into `phase` (showing `state`) at `time`."""

    time: float
    phase: int
    state: str = ""


class SafeApplier:
    """Drives one SignalPort. Call `step()` every simulation step (or every second live).

    `conflicts` is the network's foe matrix: programs releasing two foes together are refused
    and red clearance is timed between foes; without it every pair of links counts as foes.
    """

    def __init__(
        self,
        port: SignalPort,
        safety: SignalSafety,
        policy: AcyclicPolicy = PRODUCTION_POLICY,
        conflicts: ConflictMatrix | None = None,
    ) -> None:
        self.port = port
        self.safety = safety
        self.program = port.phases()
        validate_program(port.junction_id, self.program, conflicts)
        n = len(self.program)
        # the program plus a red-clearance phase per yellow, installed on the controller
        self.driven = drive(self.program, safety.all_red_s)
        self._all = self.driven.phases
        self._clock = ClearanceClock(len(self.program[0].state), safety.all_red_s, conflicts)
        self.green_phases = [i for i, p in enumerate(self.program) if p.kind == "green"]
        self._crossing = [port.has_pedestrian_crossing(i) for i in range(n)]
        self.policy = for_junction(policy, any(self._crossing))
        self.fixed_greens = {
            i: self._clamp_green(i, self.program[i].duration_s) for i in self.green_phases
        }
        self._targets: dict[int, float] = dict(self.fixed_greens)
        self._alignment: tuple[float, float] | None = None  # (cycle_s, offset_s)
        self.source = "fixed"
        now = port.time()
        self._phase = port.current_phase() % n
        port.install(self._all)
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
        self._yellows = YellowClock([p.state for p in self._all], n, safety.yellow_s)
        self._tail = program_order_tails(self.program, self._held, self._shortest)
        self._exit = worst_exits(
            self.program,
            self._held,
            self._paths,
            shortest=self._shortest,
            floor=self._walk_floor,
            max_green_s=safety.max_green_s,
        )
        # Take control now: hold the current phase (so the controller stops advancing on its
        # own) and count it from now, so its minimum holds in full.
        port.set_phase(self._phase)
        self._entered = now
        self._mark(now)
        self._cap = float("inf")  # set by _begin: the longest the current green may run
        self._route: list[int] = []  # phases still to show on the way to a chosen green
        self._duration = self._begin(self._phase, now)
        self.switches: list[Switch] = [Switch(now, self._phase, self._all[self._phase].state)]
        self._served_at = dict.fromkeys(self.green_phases, now)
        self._routes = Routes(self.program, self._paths)

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

    @property
    def priorities(self) -> dict[int, float] | None:
        """The per-phase priorities driving acyclic control (None: the program's order)."""
        return None if self._priorities is None else dict(self._priorities)

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

    @property
    def phase_elapsed(self) -> float:
        return self.port.time() - self._entered

    # -- the clock ----------------------------------------------------------------------------

    @property
    def phase(self) -> int:
        """Index of the phase shown, in the installed program (`driven.phases`)."""
        return self._phase

    @property
    def program_phase(self) -> int:
        """The junction's own phase shown (a red clearance counts as its yellow)."""
        return self.driven.origin(self._phase)

    @property
    def current(self) -> PhaseDef:
        return self._all[self._phase]

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
            self._phase = actual % len(self._all)
            self._entered = now
            self._route = []
            self._green_since.clear()
            self._mark(now)
            self._duration = self._begin(self._phase, now)
            self.switches.append(Switch(now, self._phase, self._all[self._phase].state))
            return
        elapsed = now - self._entered
        if self._all[self._phase].kind == "green":
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
                if current in self._routes.follow_on:
                    # a protected turn after its parent green: its planned time, then choose;
                    # a plan that shortened it since it began counts (a follow-on begun under
                    # the program's own 90 s ran them all while the plans asked for 7)
                    planned = max(self._floor(current), self._slot(current))
                    if elapsed + _EPS < min(self._duration, planned) and not due:
                        return
                    target = self._choose(now, elapsed, forced=True)
                else:
                    if elapsed + _EPS < self._slot(current) and not due:
                        return
                    target = self._choose(now, elapsed, forced=due)
                    turn = self._routes.turn_after.get(current)
                    long_enough = elapsed >= self.policy.turn_after_s
                    if target is not None and turn is not None and long_enough:
                        target = turn  # its follow-on turn phase runs before anything else
                if target is not None:
                    self._route = self._routes.route_to(current, target)
                elif elapsed + _EPS < self._ceiling(current) and not due:
                    return
            elif elapsed + _EPS < self._duration:
                return
        elif elapsed + _EPS < self._duration:
            return
        nxt = self._route[0] if self._route else (self.program_phase + 1) % len(self.program)
        here, there = self._all[self._phase].state, self._all[nxt].state
        relit = any(a in "yY" and b in _GREEN for a, b in zip(here, there, strict=True))
        clear_red = 0.0
        on_route = False
        if relit and self._phase in self.driven.clearance_of:
            # a yellow straight back to green (netconvert's joined programs): a yellow ends red,
            # so its clearance phase runs first, red for all_red_s, then the green
            nxt, clear_red = self.driven.clearance_of[self._phase], self.safety.all_red_s
        elif self._clock.wait_s(self._all[nxt].state, now) > 0:
            # a link of the next phase would turn green inside a foe's red clearance: a yellow
            # goes to its clearance phase first; a red or green phase runs on until clear
            detour = self.driven.clearance_of.get(self._phase)
            if detour is None:
                return
            nxt = detour
        else:
            on_route = bool(self._route)
        if self._yellows.unserved(self._all[nxt].state, now):
            return  # a link's yellow would end before its time (a detour cut a staggered yellow)
        if on_route:
            self._route.pop(0)
        self.port.set_phase(nxt)
        self._phase = nxt
        self._entered = now
        self._mark(now)
        self._duration = max(self._begin(nxt, now), clear_red)
        self.switches.append(Switch(now, nxt, self._all[nxt].state))

    def _mark(self, now: float) -> None:
        """Track when each held link's current green run (G or g) and each link's yellow began."""
        state = self._all[self._phase].state
        self._clock.show(state, now)
        for k in self._held:
            if state[k] in _GREEN:
                self._green_since.setdefault(k, now)
            else:
                self._green_since.pop(k, None)
        self._yellows.show(state, now)

    # -- per-link maximum green -----------------------------------------------------------------

    def _shortest(self, i: int) -> float:
        """The least time phase i can take once begun, with the red clearance it may need.

        A yellow followed by a phase that turns a link green may go through its clearance
        phase first, which keeps the yellow's greens green for up to `all_red_s` more.
        """
        if self.program[i].kind == "green":
            return self._walk_floor(i)
        seconds = self._duration_for(i, 0.0)
        if i in self.driven.clearance_of:
            here, nxt = self.program[i].state, self.program[(i + 1) % len(self.program)].state
            if any(b in _GREEN and a not in _GREEN for a, b in zip(here, nxt, strict=True)):
                seconds += self.safety.all_red_s
        return seconds

    def _link_cap(self, i: int, now: float) -> float:
        """Longest phase i may run so every held link green in it ends its run in max green."""
        cap = float("inf")
        for k, since in self._green_since.items():
            if (i, k) in self._tail:
                cap = min(cap, self.safety.max_green_s - (now - since) - self._tail[(i, k)])
        return cap

    def _begin(self, i: int, now: float) -> float:
        """Duration of phase i beginning now: a green within its limits and its links' runs."""
        if i < len(self.program) and self.program[i].kind == "yellow":
            after = self._route[0] if self._route else (i + 1) % len(self.program)
            return self._yellows.duration(i, after, self.program[i].duration_s, now)
        seconds = self._duration_for(i, now)
        if self._all[i].kind != "green":
            return seconds
        self._cap = self._link_cap(i, now)
        return max(self._floor(i), min(seconds, self._cap))

    def _choose(self, now: float, elapsed: float, forced: bool = False) -> int | None:
        """The green to go to next, or None to keep serving the current one."""
        assert self._priorities is not None
        current = self._phase
        options = [k for k in self.green_phases if self._routes.reachable(current, k)]
        waited = {k: now - self._served_at[k] for k in options}
        at_ceiling = elapsed + _EPS >= self._ceiling(current)
        return choose_green(
            current,
            waited,
            self._priorities,
            self.policy,
            forced=forced or at_ceiling,
            elapsed=elapsed,
        )

    def _floor(self, i: int) -> float:
        return min_green(self.safety, self._crossing[i])

    def _walk_floor(self, i: int) -> float:
        """Least time a later green i can keep a link green on the way out of a green.

        Its minimum, or the red clearance if longer: right after a foe's yellow, the clock holds
        the phase after i until `all_red_s` has passed, and i is what is shown meanwhile (a
        follow-on turn before a conflicting green ran 9 s, not its 3 s minimum, and a link
        that was timed out at 42 s ran 47).
        """
        return max(self._floor(i), self.safety.all_red_s)

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
        if i >= len(self.program):
            return 0.0  # a red clearance lasts until the clearance clock lets the next phase go
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
            # a change interval with the red clearance the applier may add to it
            green = self.program[j].kind == "green"
            start += self._targets[j] if green else self._shortest(j)
            j = (j + 1) % len(self.program)
        error = (offset_s - start) % cycle_s
        if error > cycle_s / 2:
            error -= cycle_s
        bound = 0.25 * seconds  # coordination may bend a green, never dominate it
        return max(-bound, min(bound, error))
