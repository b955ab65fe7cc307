"""Programs as edgeward reads them (shared/traffic/programs.py)."""

from __future__ import annotations

from shared.traffic.programs import Phase, never_green, with_yellows


def _program(*states: str) -> list[Phase]:
    return [Phase(s, 30.0, 30.0, 30.0) for s in states]


# SUMO's bs3d example: each program has one green, for one pair of approaches; SUMO runs the
# last loaded, which serves links 2-3 only.
EAST_WEST = _program("rryy", "rrrr", "rrGG")


def test_links_no_phase_gives_green_are_found() -> None:
    assert never_green([p.state for p in EAST_WEST]) == [0, 1]
    assert never_green(["GgrO", "yyrO"]) == [2, 3]


def test_each_green_is_followed_by_a_yellow_for_the_links_the_next_green_stops() -> None:
    out = with_yellows(_program("GGgr", "rrGG"))
    assert [p.state for p in out] == ["GGgr", "yygr", "rrGG", "rrGy"]
