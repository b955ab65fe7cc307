"""The edge `SignalPort` over TraCI, and the recorder of every signal state the twin shows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edge.traffic.program import left_out_phases
from edge.traffic.signal_port import PhaseDef
from shared.traffic.nema import ring_phases, written_out
from shared.traffic.programs import read_phases
from sim.traffic.network import Junction
from sim.traffic.safety import conflicts_of

HOLD_S = 1e6  # a phase lasts "forever" under the port: only set_phase moves the signal
PROGRAM_ID = "edgeward"
NEMA_LOGIC = 4  # TraCI's type of a NEMA dual-ring logic (tc.TRAFFICLIGHT_TYPE_NEMA)


def _program(logic: Any) -> list[PhaseDef]:
    """The phases a light's own logic shows; NEMA's written out (shared.traffic.nema)."""
    if int(logic.type) == NEMA_LOGIC:
        phases = written_out(ring_phases(logic.phases), logic.getParameters())
    else:
        phases = read_phases(logic.phases)
    return [
        PhaseDef.from_state(p.state, p.duration, p.min_dur or None, p.max_dur or None)
        for p in phases
    ]


class TraciSignalPort:
    """One traffic light driven through TraCI; implements `edge.traffic.signal_port.SignalPort`.

    The first `set_phase` switches the light to an own program ("edgeward") with the phases of
    the network's static program held for HOLD_S, so SUMO never advances by itself and can
    never cut a yellow short; until then the light runs its own program. A light handed back to
    its own program (`trafficlight.setProgram(id, "0")`) is taken over again by the next
    `set_phase`.
    """

    def __init__(
        self,
        conn: Any,
        junction: Junction,
        clock_offset: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`clock`: simulated seconds now, if the caller knows them without asking SUMO."""
        self.junction_id = junction.junction_id
        self._clock_offset = clock_offset
        self._clock = clock
        self._conn = conn
        self._junction = junction
        logics = self._conn.trafficlight.getAllProgramLogics(self.junction_id)
        current = self._conn.trafficlight.getProgram(self.junction_id)
        logic = next((lg for lg in logics if lg.programID == current), logics[0])
        self._own_id = logic.programID  # what a released light goes back to
        program = _program(logic)
        # phases releasing two foes together are left out where the rest still serves every
        # link (edge.traffic.program.drivable_phases); own phase -> the logic's phase number
        self.left_out = left_out_phases(program, conflicts_of(junction.layout))
        self._numbers = [i for i in range(len(program)) if i not in self.left_out]
        self._own = [program[i] for i in self._numbers]  # what the applier may show
        self._phases = list(self._own)  # what is installed
        # a NEMA logic's written-out phases are not numbered as SUMO numbers its own
        self._same_numbers = int(logic.type) != NEMA_LOGIC
        self._controlled = False
        self._flashing = False

    def phases(self) -> list[PhaseDef]:
        return list(self._own)

    def install(self, program: Sequence[PhaseDef]) -> None:
        """The applier's program (own phases first) becomes the "edgeward" program."""
        self._phases = list(program)
        self._controlled = False  # the next set_phase loads it

    def current_phase(self) -> int:
        phase = int(self._conn.trafficlight.getPhase(self.junction_id))
        if not self.left_out or (
            self._controlled and self._conn.trafficlight.getProgram(self.junction_id) == PROGRAM_ID
        ):
            return phase
        # the light runs its own logic: the own phase that stands for it (a phase left out
        # stands for the next one kept, which the logic itself goes to from it)
        return next((k for k, n in enumerate(self._numbers) if n >= phase), 0)

    def set_phase(self, index: int) -> None:
        if self._flashing:
            return  # a tripped monitor's flash holds until someone resets the cabinet
        if not 0 <= index < len(self._phases):
            raise ValueError(
                f"junction {self.junction_id}: phase {index} does not exist; "
                f"the program has phases 0..{len(self._phases) - 1}"
            )
        # Someone may have handed the light back to its own program (a killed gateway).
        if (
            not self._controlled
            or self._conn.trafficlight.getProgram(self.junction_id) != PROGRAM_ID
        ):
            self._take_control(index)
        self._conn.trafficlight.setPhase(self.junction_id, index)
        self._conn.trafficlight.setPhaseDuration(self.junction_id, HOLD_S)

    def _take_control(self, index: int) -> None:
        import traci

        phases = [traci.trafficlight.Phase(HOLD_S, p.state) for p in self._phases]
        logic = traci.trafficlight.Logic(PROGRAM_ID, 0, index, phases)
        if not self._controlled:  # (re)load: the applier may have installed a new program
            self._conn.trafficlight.setProgramLogic(self.junction_id, logic)
        self._conn.trafficlight.setProgram(self.junction_id, PROGRAM_ID)
        self._controlled = True

    def release(self) -> None:
        """Back to the program the light ran at start, at the phase it stands for."""
        self.hand_back(min(self.current_phase(), len(self._own) - 1))

    def hand_back(self, phase: int, remaining_s: float | None = None) -> None:
        """The light runs the program it ran at start again, from its `phase` with
        `remaining_s` of it left (None: the phase's own time); a logic whose phases are
        numbered otherwise (NEMA's, written out) starts over."""
        self._conn.trafficlight.setProgram(self.junction_id, self._own_id)
        if self._same_numbers:
            self._conn.trafficlight.setPhase(self.junction_id, self._numbers[phase])
            if remaining_s is not None:
                self._conn.trafficlight.setPhaseDuration(self.junction_id, remaining_s)

    def fail_safe(self) -> None:
        """SUMO's 'o' (off, blinking): every vehicle yields, as at a flashing signal."""
        self._flashing = True
        width = len(self._own[0].state)
        self._conn.trafficlight.setRedYellowGreenState(self.junction_id, "o" * width)

    def time(self) -> float:
        now = self._clock() if self._clock is not None else self._conn.simulation.getTime()
        return float(now) + self._clock_offset

    def has_pedestrian_crossing(self, phase: int) -> bool:
        state = self._phases[phase].state
        return any(state[i] in "Gg" for i in self._junction.layout.crossings if i < len(state))


class SignalRecorder:
    """Records each traffic light's state whenever it changes, via one subscription per light."""

    def __init__(self, conn: Any, junction_ids: list[str]) -> None:
        import traci.constants as tc

        self._conn = conn
        self._var = tc.TL_RED_YELLOW_GREEN_STATE
        self.changes: dict[str, list[tuple[float, str]]] = {j: [] for j in junction_ids}
        for j in junction_ids:
            conn.trafficlight.subscribe(j, [self._var])

    def poll(self, t: float) -> None:
        results = self._conn.trafficlight.getAllSubscriptionResults()
        for j, values in results.items():
            state = values.get(self._var)
            seq = self.changes.get(j)
            if seq is None or state is None:
                continue
            if not seq or seq[-1][1] != state:
                seq.append((t, state))
