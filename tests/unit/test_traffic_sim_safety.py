"""The signal-sequence safety checker catches each kind of violation and passes a safe program."""

from __future__ import annotations

import pytest

from shared.config.traffic import SignalSafety
from sim.traffic.network import SignalLayout
from sim.traffic.safety import VIOLATION_KINDS, check_sequence

SAFETY = SignalSafety(min_green_s=7, max_green_s=60, yellow_s=4, all_red_s=2, pedestrian_min_s=10)
# Two links that cross (0 north-south through, 1 east-west through) and a crossing (2).
LAYOUT = SignalLayout("J", 3, foes=frozenset({(0, 1)}), crossings=frozenset({2}))


def _program(green: float = 30, yellow: float = 4, red: float = 2, cycles: int = 3):
    """A safe two-phase cycle as (time, state) changes."""
    seq, t = [], 0.0
    for _ in range(cycles):
        for state_g, state_y in (("GrG", "yrr"), ("rGr", "ryr")):
            seq += [(t, state_g), (t + green, state_y), (t + green + yellow, "rrr")]
            t += green + yellow + red
    return seq, t


def _kinds(seq, end=None):
    return [v.kind for v in check_sequence(seq, SAFETY, LAYOUT, end_time=end)]


def test_safe_two_phase_program_has_no_violations() -> None:
    seq, end = _program()
    assert check_sequence(seq, SAFETY, LAYOUT, end_time=end) == []


def test_green_to_red_without_yellow_is_caught() -> None:
    seq = [(0.0, "Grr"), (20.0, "rrr"), (22.0, "rGr")]
    assert "green_to_red" in _kinds(seq)


def test_pedestrian_walk_may_end_without_yellow() -> None:
    seq = [(0.0, "rrG"), (20.0, "rrr"), (30.0, "rrG")]
    assert _kinds(seq) == []


def test_short_yellow_is_caught_with_its_length() -> None:
    seq = [(0.0, "Grr"), (20.0, "yrr"), (22.0, "rrr"), (25.0, "rGr")]
    violations = check_sequence(seq, SAFETY, LAYOUT)
    assert [v.kind for v in violations] == ["short_yellow"]
    assert "2.0 s" in violations[0].detail and "4.0 s" in violations[0].detail


def test_major_yellow_letter_counts_as_yellow() -> None:
    seq = [(0.0, "Grr"), (20.0, "Yrr"), (24.0, "rrr"), (26.0, "rGr")]
    assert _kinds(seq) == []


def test_short_green_is_caught() -> None:
    seq = [(0.0, "rrr"), (2.0, "Grr"), (7.0, "yrr"), (11.0, "rrr")]
    assert _kinds(seq) == ["short_green"]


def test_permissive_then_protected_green_counts_as_one_green() -> None:
    # A left turn: permissive 'g' for 5 s, then protected 'G' for 5 s = 10 s of green.
    seq = [(0.0, "grr"), (5.0, "Grr"), (10.0, "yrr"), (14.0, "rrr")]
    assert _kinds(seq) == []


def test_long_protected_green_is_caught_even_at_the_end() -> None:
    seq = [(0.0, "rrr"), (10.0, "Grr")]
    assert _kinds(seq, end=100.0) == ["long_green"]


def test_permissive_then_protected_green_past_max_green_is_one_long_green() -> None:
    # 39 s permissive then 30 s protected: each under 60 s, together one 69 s green.
    seq = [(0.0, "rrr"), (1.0, "grr"), (40.0, "Grr"), (70.0, "yrr"), (74.0, "rrr")]
    assert _kinds(seq) == ["long_green"]


def test_link_green_for_the_whole_run_is_not_held_to_max_green() -> None:
    seq = [(0.0, "Grr"), (10.0, "Gyr")]
    assert "long_green" not in _kinds(seq, end=1000.0)


def test_conflicting_protected_greens_are_caught() -> None:
    seq = [(0.0, "rrr"), (10.0, "GGr")]
    assert "conflicting_greens" in _kinds(seq)


def test_permissive_green_against_a_protected_foe_is_allowed() -> None:
    seq = [(0.0, "rrr"), (10.0, "Ggr"), (30.0, "yyr"), (34.0, "rrr")]
    assert _kinds(seq) == []


def test_foe_turning_green_inside_red_clearance_is_caught() -> None:
    seq = [(0.0, "Grr"), (20.0, "yrr"), (24.0, "rrr"), (25.0, "rGr")]
    assert _kinds(seq) == ["no_red_clearance"]


def test_recording_that_starts_in_a_yellow_beside_a_permissive_foe_is_clean() -> None:
    # a monitor started mid-cycle: link 1 (permissive) was green before, as far as anyone knows
    seq = [(0.0, "ygr"), (4.0, "rgr"), (24.0, "ryr"), (28.0, "rrr"), (30.0, "Grr")]
    assert _kinds(seq) == []


def test_short_pedestrian_walk_is_caught() -> None:
    seq = [(0.0, "rrr"), (10.0, "rrG"), (17.0, "rrr")]
    assert _kinds(seq) == ["short_walk"]


def test_malformed_state_is_reported_not_crashed_on() -> None:
    seq = [(0.0, "Grr"), (10.0, "Gr"), (20.0, "Gxr")]
    assert _kinds(seq) == ["bad_state", "bad_state"]


def test_yellow_that_turns_green_again_is_caught() -> None:
    seq = [(0.0, "Grr"), (20.0, "yrr"), (24.0, "Grr"), (44.0, "yrr"), (48.0, "rrr")]
    assert _kinds(seq) == ["yellow_to_green"]


def test_long_yellow_is_caught() -> None:
    seq = [(0.0, "Grr"), (20.0, "yrr"), (30.0, "rrr")]
    assert _kinds(seq) == ["long_yellow"]


@pytest.mark.parametrize("kind", VIOLATION_KINDS)
def test_every_kind_has_a_test_above(kind: str) -> None:
    names = [n for n in globals() if n.startswith("test_")]
    words = {
        "green_to_red": "green_to_red",
        "yellow_to_green": "yellow_that_turns_green",
        "long_yellow": "long_yellow",
        "short_yellow": "short_yellow",
        "short_green": "short_green",
        "long_green": "long_protected_green",
        "conflicting_greens": "conflicting_protected_greens",
        "no_red_clearance": "red_clearance",
        "short_walk": "short_pedestrian_walk",
        "bad_state": "malformed_state",
    }
    assert any(words[kind] in n for n in names)


def test_recording_that_starts_mid_yellow_does_not_time_the_part_it_never_saw() -> None:
    # the yellow may have begun long before the monitor started: its length is unknown
    seq = [(0.0, "yrr"), (1.0, "rrr"), (3.0, "rGr"), (23.0, "ryr"), (27.0, "rrr")]
    assert _kinds(seq) == []


def test_a_yellow_seen_from_its_start_is_still_timed_after_a_mid_cycle_start() -> None:
    seq = [(0.0, "Grr"), (5.0, "yrr"), (6.0, "rrr")]  # the green's start unseen, the yellow's seen
    assert _kinds(seq) == ["short_yellow"]


def test_a_recording_that_starts_mid_yellow_still_catches_a_yellow_too_long() -> None:
    seq = [(0.0, "yrr"), (7.0, "rrr")]  # 7 s seen is at least 7 s shown
    assert _kinds(seq) == ["long_yellow"]
