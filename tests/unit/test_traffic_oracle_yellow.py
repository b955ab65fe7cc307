"""The independent oracle reads a yellow that changes letter ('y' -> 'Y') as one yellow."""

from __future__ import annotations

from shared.config.traffic import SignalSafety
from shared.traffic.oracle import SafetyOracle

LIMITS = SignalSafety(yellow_s=4.0, all_red_s=2.0, min_green_s=7.0)


def _kinds(*changes: tuple[float, str]) -> list[str]:
    oracle = SafetyOracle(LIMITS)
    return [v.kind for t, state in changes for v in oracle.observe(t, state)]


def test_a_yellow_staggered_over_two_phases_counts_whole() -> None:
    # netconvert writes 'y' for a minor link and 'Y' for a major one; a program whose link is
    # minor in one yellow phase and major in the next shows one 6 s yellow (SUMO's Ingolstadt
    # network does): judged as two 3 s yellows it tripped the run-time monitor into flash.
    kinds = _kinds((0.0, "r"), (10.0, "G"), (30.0, "y"), (33.0, "Y"), (36.0, "r"))
    assert kinds == []


def test_a_staggered_yellow_still_too_short_in_all_is_short() -> None:
    kinds = _kinds((0.0, "r"), (10.0, "G"), (30.0, "y"), (31.5, "Y"), (33.0, "r"))
    assert kinds == ["short_yellow"]


def test_a_staggered_yellow_too_long_in_all_is_long() -> None:
    kinds = _kinds((0.0, "r"), (10.0, "G"), (30.0, "y"), (34.0, "Y"), (38.0, "r"))
    assert kinds == ["long_yellow"]
