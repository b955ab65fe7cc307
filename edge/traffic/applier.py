"""The safe applier: the only code that switches a junction's signals, always within SignalSafety.

Whatever asks for timings (a cloud plan, the local actuated logic, the fixed schedule) only sets
per-phase green targets. The applier walks the junction's own program in order (green -> its
yellow -> its red clearance -> next green), so a yellow is never skipped, and clamps every phase
duration to the safety limits at the moment it enters the phase.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from edge.traffic.signal_port import PhaseDef, SignalPort
from shared.config.traffic import SignalSafety
from shared.errors import EdgewardError
from shared.messages.traffic import SignalPlan

log = logging.getLogger(__name__)

YELLOW_MAX_S = 6.0  # the yellow change interval is 3-6 s; SignalSafety bounds the minimum
_EPS = 1e-6


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

    def __init__(self, port: SignalPort, safety: SignalSafety) -> None:
        self.port = port
        self.safety = safety
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
        # Take control now: hold the current phase (so the controller stops advancing on its
        # own) and count it from now, so its minimum holds in full.
        port.set_phase(self._phase)
        self._entered = now
        self._duration = self._duration_for(self._phase, now)
        self.switches: list[Switch] = [Switch(now, self._phase)]

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
        self._duration = self._clamp_green(self._phase, total_s)
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
            self._duration = self._duration_for(self._phase, now)
            self.switches.append(Switch(now, self._phase))
            return
        if now - self._entered + _EPS < self._duration:
            return
        nxt = (self._phase + 1) % len(self.program)
        self.port.set_phase(nxt)
        self._phase = nxt
        self._entered = now
        self._duration = self._duration_for(nxt, now)
        self.switches.append(Switch(now, nxt))

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
