"""Property tests: whatever plans arrive and however the clock ticks, the signals stay safe."""

from __future__ import annotations

import os
from itertools import pairwise

from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from edge.traffic.acyclic import PRODUCTION_POLICY
from edge.traffic.applier import SafeApplier
from edge.traffic.signal_port import PhaseDef
from edge.traffic.yellow_clock import STEP_S
from shared.config.traffic import SignalSafety
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.oracle import Violation, check_sequence
from shared.traffic.timing import YELLOW_MAX_S
from tests.unit.traffic_fakes import MemoryPort, foes_never_green_together

# A mutation run wants a verdict, not a minimal example: EDGEWARD_NO_SHRINK=1 skips shrinking.
PHASES = tuple(
    p for p in Phase if p is not Phase.shrink or not os.environ.get("EDGEWARD_NO_SHRINK")
)


@st.composite
def programs(draw: st.DrawFn) -> list[PhaseDef]:
    """Random but well-formed programs: regular, many-phase, green->green, optional all-red."""
    links = draw(st.integers(1, 14))
    n_greens = draw(st.integers(1, 6))
    greens = [
        "".join(draw(st.lists(st.sampled_from("GgrG"), min_size=links, max_size=links)))
        for _ in range(n_greens)
    ]
    greens = [g if any(c in "Gg" for c in g) else "G" + g[1:] for g in greens]
    # a controller shows one state once: no two neighbouring greens alike
    greens = [g for k, g in enumerate(greens) if k == 0 or g != greens[k - 1]]
    if len(greens) > 1 and greens[0] == greens[-1]:
        greens.pop()
    n_greens = len(greens)
    program: list[PhaseDef] = []
    for k, state in enumerate(greens):
        nxt = greens[(k + 1) % n_greens]
        program.append(
            PhaseDef.from_state(
                state, draw(st.floats(1, 150)), draw(st.floats(1, 10)), draw(st.floats(10, 150))
            )
        )
        loses = [a in "Gg" and b not in "Gg" for a, b in zip(state, nxt, strict=True)]
        if not any(loses) and draw(st.booleans()):
            continue  # green -> green where nobody loses green needs no yellow
        _add_clearance(draw, program, state, loses)
    return program


def _add_clearance(draw: st.DrawFn, program: list[PhaseDef], state: str, loses: list[bool]) -> None:
    """Yellow for the links that lose green (all of them before an all-red), maybe all-red."""
    # with nobody losing green, a yellow only makes sense before an all-red
    all_red = draw(st.booleans()) or not any(loses)
    ending = [a in "Gg" and (lost or all_red) for a, lost in zip(state, loses, strict=True)]
    yellow = "".join(
        "y" if end else ("G" if a in "Gg" else "r") for a, end in zip(state, ending, strict=True)
    )
    if sum(ending) >= 2 and draw(st.booleans()):
        _add_staggered_yellow(draw, program, state, ending)
    else:
        program.append(PhaseDef.from_state(yellow, draw(st.floats(0.5, 12))))
    if all_red:
        program.append(PhaseDef.from_state("r" * len(state), draw(st.floats(0.1, 8))))


def _add_staggered_yellow(
    draw: st.DrawFn, program: list[PhaseDef], state: str, ending: list[bool]
) -> None:
    """A change interval over three yellow phases, as real city programs stagger it: some links
    go yellow while the others are still green, then all of them, then the first ones red."""
    idx = [k for k, end in enumerate(ending) if end]
    first = set(draw(st.lists(st.sampled_from(idx), min_size=1, max_size=len(idx) - 1)))
    if first == set(idx):
        first.discard(idx[-1])

    def show(k: int, early: str, late: str) -> str:
        if not ending[k]:
            return "G" if state[k] in "Gg" else "r"
        return early if k in first else late

    for early, late in (("y", state), ("y", "y"), ("r", "y")):
        letters = "".join(
            show(k, early, late if len(late) == 1 else late[k]) for k in range(len(state))
        )
        program.append(PhaseDef.from_state(letters, draw(st.floats(0.5, 12))))


@st.composite
def chained_programs(draw: st.DrawFn) -> list[PhaseDef]:
    """Programs built of green->green chains: a link keeps its green (G or g) into the next
    green of its chain, as netconvert's protected turns after a through green do."""
    links = draw(st.integers(2, 10))
    chains: list[list[str]] = []
    for _ in range(draw(st.integers(1, 4))):
        state = "".join(draw(st.lists(st.sampled_from("Ggr"), min_size=links, max_size=links)))
        if not any(c in "Gg" for c in state):
            state = "G" + state[1:]
        chain = [state]
        for _ in range(draw(st.integers(0, 2))):
            # the next green of the chain: every green link stays green, some red ones join
            state = "".join(
                draw(st.sampled_from("Gg")) if c in "Gg" or draw(st.booleans()) else "r"
                for c in state
            )
            if state != chain[-1]:  # a controller shows one state once: no twin phases
                chain.append(state)
        chains.append(chain)
    program: list[PhaseDef] = []
    for n, chain in enumerate(chains):
        for state in chain:
            program.append(
                PhaseDef.from_state(
                    state, draw(st.floats(1, 150)), draw(st.floats(1, 10)), draw(st.floats(10, 150))
                )
            )
        last, nxt = chain[-1], chains[(n + 1) % len(chains)][0]
        loses = [a in "Gg" and b not in "Gg" for a, b in zip(last, nxt, strict=True)]
        _add_clearance(draw, program, last, loses)
    return program


def _servable(program: list[PhaseDef], safety: SignalSafety) -> bool:
    """A staggered change interval fits the 6 s maximum only with a step to spare: a link that
    turns yellow while another finishes its `yellow_s` still shows yellow in the phase after."""
    staggered = any(p.kind == "yellow" == q.kind for p, q in pairwise(program))
    return not staggered or safety.yellow_s <= YELLOW_MAX_S - STEP_S


safeties = st.builds(
    SignalSafety,
    min_green_s=st.floats(3, 30),
    max_green_s=st.floats(30, 300),
    yellow_s=st.floats(3, 6),
    all_red_s=st.floats(0, 10),
    pedestrian_min_s=st.floats(0, 60),
    max_plan_change_s=st.floats(0, 120),
)

plan_events = st.lists(
    st.tuples(
        st.floats(0, 200),  # seconds until this plan arrives
        st.dictionaries(st.integers(0, 30), st.floats(0.01, 1000), max_size=8),
        st.one_of(st.none(), st.tuples(st.floats(20, 240), st.floats(0, 240))),
    ),
    max_size=12,
)


def _oracle(
    port: MemoryPort, safety: SignalSafety, conflicts: ConflictMatrix, gaps: list[float]
) -> list[Violation]:
    """The independent oracle on every state the port showed (one step late at most)."""
    return check_sequence(port.shown, safety, conflicts, end_time=port.now, tolerance_s=max(gaps))


def _network(program: list[PhaseDef], crossings: frozenset[int]) -> ConflictMatrix:
    """The made-up program's network: links never green together are foes; some are walks."""
    foes = foes_never_green_together(program)
    width = foes.n_links
    return ConflictMatrix.of(width, foes.foes, {k for k in crossings if k < width})


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=PHASES,
)
@given(
    program=st.one_of(programs(), chained_programs()),
    safety=safeties,
    events=plan_events,
    gaps=st.lists(st.floats(0.05, 1.0), min_size=1, max_size=8),
    crossings=st.frozensets(st.integers(0, 14), max_size=4),
    start=st.integers(0, 30),
)
def test_applier_never_emits_an_unsafe_sequence(  # noqa: PLR0917 (hypothesis arguments)
    program, safety, events, gaps, crossings, start
) -> None:
    assume(_servable(program, safety))
    network = _network(program, crossings)
    port = MemoryPort(program, start_phase=start % len(program), crossing_links=network.crossings)
    applier = SafeApplier(port, safety, PRODUCTION_POLICY, network)
    previous = applier.targets
    arrivals = []
    t = 0.0
    for delay, greens, alignment in events:
        t += delay
        arrivals.append((t, greens, alignment))
    end = max(t, 300.0) + 400.0
    step = 0
    while port.now < end:
        while arrivals and arrivals[0][0] <= port.now:
            _, greens, alignment = arrivals.pop(0)
            wanted = {i: g for i, g in greens.items() if i in applier.green_phases}
            applied = applier.set_targets(wanted, "test", alignment)
            for i, seconds in applied.items():
                assert abs(seconds - previous[i]) <= safety.max_plan_change_s + 1e-6
            previous = applied
        applier.step()
        port.now += gaps[step % len(gaps)]
        step += 1
    assert _oracle(port, safety, network, gaps) == []
    assert len(applier.switches) > 1  # the junction really cycled


priority_events = st.lists(
    st.tuples(
        st.floats(0, 200),  # seconds until these priorities arrive
        st.dictionaries(st.integers(0, 30), st.floats(-50, 50), max_size=8),
        st.dictionaries(st.integers(0, 30), st.floats(0.01, 1000), max_size=8),  # targets
    ),
    max_size=12,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=PHASES,
)
@given(
    program=st.one_of(programs(), chained_programs()),
    safety=safeties,
    events=priority_events,
    gaps=st.lists(st.floats(0.05, 1.0), min_size=1, max_size=8),
    crossings=st.frozensets(st.integers(0, 14), max_size=4),
    start=st.integers(0, 30),
)
def test_acyclic_applier_skips_phases_without_skipping_a_yellow_or_clearance(  # noqa: PLR0917
    program, safety, events, gaps, crossings, start
) -> None:
    assume(_servable(program, safety))
    network = _network(program, crossings)
    port = MemoryPort(program, start_phase=start % len(program), crossing_links=network.crossings)
    applier = SafeApplier(port, safety, PRODUCTION_POLICY, network)
    # as the gateway drives it: planned greens at the minimum, acyclic on the priorities
    applier.set_targets(dict.fromkeys(applier.green_phases, safety.min_green_s), "test")
    applier.set_priorities({}, "test")  # acyclic from the start (no data: age decides)
    arrivals = []
    t = 0.0
    for delay, priorities, greens in events:
        t += delay
        arrivals.append((t, priorities, greens))
    end = max(t, 300.0) + 400.0
    step = 0
    while port.now < end:
        while arrivals and arrivals[0][0] <= port.now:
            _, priorities, greens = arrivals.pop(0)
            mine = set(applier.green_phases)
            applier.set_targets({i: g for i, g in greens.items() if i in mine}, "test")
            applier.set_priorities({i: v for i, v in priorities.items() if i in mine}, "test")
        applier.step()
        port.now += gaps[step % len(gaps)]
        step += 1
    assert _oracle(port, safety, network, gaps) == []
    assert len(applier.switches) > 1


def test_a_green_held_by_a_red_clearance_still_counts_toward_max_green() -> None:
    """Link 7 is green from phase 5 through its follow-on turn 0 into phase 1. After link 8's
    yellow the clock holds phase 1 (link 3, a foe of 8) for the 9 s red clearance, and turn 0
    is shown meanwhile: the applier must leave phase 5 early enough for that wait too."""

    def green(state: str) -> PhaseDef:
        return PhaseDef(state=state, duration_s=1.0, min_s=1.0, max_s=10.0, kind="green")

    def yellow(state: str) -> PhaseDef:
        return PhaseDef(state=state, duration_s=1.0, min_s=1.0, max_s=1.0, kind="yellow")

    program = [
        green("GGGrGGGGr"),
        green("GGGGGGGGr"),
        yellow("GGGyGGGyr"),
        green("GGGrGGgrG"),
        green("GGGrGGGrG"),
        green("GGGrGGGGG"),
        yellow("GGGrGGGGy"),
    ]
    safety = SignalSafety(min_green_s=3.0, max_green_s=42.0, yellow_s=3.0, all_red_s=9.0)
    network = _network(program, frozenset())
    port = MemoryPort(program, start_phase=0, crossing_links=network.crossings)
    applier = SafeApplier(port, safety, PRODUCTION_POLICY, network)
    applier.set_targets(dict.fromkeys(applier.green_phases, safety.min_green_s), "test")
    applier.set_priorities({}, "test")
    while port.now < 400.0:
        applier.step()
        port.now += 1.0
    assert _oracle(port, safety, network, [1.0]) == []
    assert len(applier.switches) > 4  # it did cycle through the route, not sit still
