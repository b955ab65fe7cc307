"""A program whose yellow goes straight back to green for a link (netconvert's joined
programs): the applier shows red for the red clearance in between, so the independent
conflict monitor has nothing to flash for."""

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
