"""Change intervals as real programs write them. A yellow that goes straight back to green for
a link (netconvert's joined programs): the applier shows red for the red clearance in between,
so the independent conflict monitor has nothing to flash for. A yellow staggered over several
phases (a city's own program): each link gets its yellow once, not once per phase."""

from __future__ import annotations

from edge.traffic.applier import SafeApplier
from edge.traffic.monitor import ConflictMonitor
from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety
from shared.traffic.oracle import check_sequence
from tests.unit.traffic_fakes import MemoryPort, foes_never_green_together

# link 0 goes yellow with link 1, then green again on its own: y -> G in program order
RELIT = [
    PhaseDef.from_state(s, d)
    for s, d in [("GGrr", 30), ("yyrr", 4), ("Grrr", 10), ("yrrr", 4), ("rrGG", 30), ("rryy", 4)]
]


def test_a_yellow_back_to_green_goes_through_red_for_the_clearance_time() -> None:
    safety = SignalSafety()
    conflicts = foes_never_green_together(RELIT)
    port = MemoryPort(RELIT)
    applier = SafeApplier(port, safety, conflicts=conflicts)
    monitor = ConflictMonitor("J1", safety, conflicts)
    while port.now < 200:
        applier.step()
        monitor.check(port.now, applier.current.state)
        port.now += 1.0
    assert port.shown[1:4] == [(30.0, "yyrr"), (34.0, "rrrr"), (36.0, "Grrr")]
    assert check_sequence(port.shown, safety, conflicts, end_time=port.now) == []
    assert monitor.tripped is None


# Ingolstadt's junction 335525545 (SUMO's tools/game/fkk_in): links 0-3 turn yellow while link 4
# is still green, then link 4 too, then 0-3 red while 4 finishes.
STAGGERED = [
    PhaseDef.from_state(s, d)
    for s, d in [
        ("rrrrrgrrrrrrr", 9),
        ("rrrrryrrrrrrr", 3),
        ("rrrrrrrrrrrrr", 3),
        ("rrrrrrrgGGrrr", 2),
        ("ggGGrrrgGGrrr", 36),
        ("ggGGrrryYYrrr", 3),
        ("ggGGrrrrrrrrr", 3),
        ("ggGGgrrrrrrrr", 8),
        ("yyYYgrrrrrrrr", 2),
        ("yyYYyrrrrrrrr", 1),
        ("rrrryrrrrrrrr", 2),
        ("rrrrrrrrrrrrr", 2),
    ]
]


def _yellow_runs(shown: list[tuple[float, str]], link: int) -> list[float]:
    runs, since = [], None
    for t, state in shown:
        if state[link] in "yY" and since is None:
            since = t
        elif state[link] not in "yY" and since is not None:
            runs.append(t - since)
            since = None
    return runs


def test_a_staggered_yellow_gives_each_link_its_yellow_once() -> None:
    safety = SignalSafety(yellow_s=4.0)
    conflicts = foes_never_green_together(STAGGERED)
    port = MemoryPort(STAGGERED)
    applier = SafeApplier(port, safety, conflicts=conflicts)
    while port.now < 400:
        applier.step()
        port.now += 1.0
    # stretched phase by phase, links 0-3 showed 8 s of yellow (at most 6 allowed)
    for link in range(5):
        assert set(_yellow_runs(port.shown, link)) == {4.0}, link
    assert check_sequence(port.shown, safety, conflicts, end_time=port.now) == []
