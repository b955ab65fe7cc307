"""Baselines under edgeward's envelope: netconvert's programs rewritten, judged by the oracle."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edge.traffic.signal_port import PhaseDef
from shared.config.traffic import SignalSafety
from shared.traffic.conflicts import ConflictMatrix
from shared.traffic.oracle import check_sequence
from sim.traffic.envelope import EnvelopeError, apply_envelope, envelope_logic
from tests.unit.traffic_fakes import foes_never_green_together

# netconvert's five-leg program: 3 s yellows straight into the next green, a 6 s turn green
FIVE_LEG = [
    (24, "rrrrGGGGgrrrrGGGggrrrr"),
    (3, "rrrryyyygrrrryyyggrrrr"),
    (6, "rrrrrrrrGrrrrrrrGGrrrr"),
    (3, "rrrrrrrryrrrrrrryyrrrr"),
    (24, "gGggrrrrrGGggrrrrrrrrr"),
    (3, "gyyyrrrrryyyyrrrrrrrrr"),
    (24, "GrrrrrrrrrrrrrrrrrGGGG"),
    (3, "yrrrrrrrrrrrrrrrrryyyy"),
]


def _logic(phases: list[tuple[int, str]], kind: str = "static", **extra: str) -> ET.Element:
    logic = ET.Element("tlLogic", {"id": "five", "type": kind, "programID": "0", "offset": "0"})
    for dur, state in phases:
        ET.SubElement(logic, "phase", {"duration": str(dur), "state": state, **extra})
    return logic


def _cycle(logic: ET.Element, cycles: int = 3) -> list[tuple[float, str]]:
    """The (time, state) changes a static program shows, as the twin's recorder sees them."""
    t, out = 0.0, []
    for _ in range(cycles):
        for p in logic.iter("phase"):
            out.append((t, p.get("state", "")))
            t += float(p.get("duration", "0"))
    return out


def test_a_netconvert_program_under_the_envelope_has_no_violations_and_was_full_of_them() -> None:
    safety = SignalSafety()
    program = [PhaseDef.from_state(s, d) for d, s in FIVE_LEG]
    conflicts = foes_never_green_together(program)
    logic = _logic(FIVE_LEG)
    end = sum(d for d, _ in FIVE_LEG) * 3.0
    before = check_sequence(_cycle(logic), safety, conflicts, end_time=end)
    assert {v.kind for v in before} >= {"short_yellow", "no_red_clearance"}

    # a red clearance after every yellow into a green that releases a link, not after the
    # through yellow into its own protected turn (those links were green already)
    assert envelope_logic(logic, safety) == 3
    phases = [(float(p.get("duration", "")), p.get("state", "")) for p in logic.iter("phase")]
    assert phases[1:5] == [
        (4.0, "rrrryyyygrrrryyyggrrrr"),
        (7.0, "rrrrrrrrGrrrrrrrGGrrrr"),  # 6 s turn green stretched to the minimum
        (4.0, "rrrrrrrryrrrrrrryyrrrr"),
        (2.0, "rrrrrrrrrrrrrrrrrrrrrr"),  # the yellow links red, the rest as they were
    ]
    end = sum(d for d, _ in phases) * 3
    assert check_sequence(_cycle(logic), safety, conflicts, end_time=end) == []


def test_actuated_limits_and_next_indices_follow_the_inserted_phases() -> None:
    safety = SignalSafety(min_green_s=8, max_green_s=40)
    logic = _logic(
        [(20, "GGrr"), (3, "yyrr"), (20, "rrGG"), (3, "rryy")],
        kind="actuated",
        minDur="5",
        maxDur="60",
    )
    logic[3].set("next", "0 2")  # the second yellow may go back to either green
    envelope_logic(logic, safety)
    phases = list(logic.iter("phase"))
    assert [p.get("state") for p in phases] == ["GGrr", "yyrr", "rrrr", "rrGG", "rryy", "rrrr"]
    assert (phases[0].get("minDur"), phases[0].get("maxDur")) == ("8", "40")
    assert (phases[1].get("minDur"), phases[1].get("maxDur")) == ("4", "4")  # never stretched
    assert phases[4].get("next") is None  # the clearance leads where the yellow led
    assert phases[5].get("next") == "0 3"  # green 2 is now phase 3


def test_an_all_red_of_the_programs_own_is_lengthened_not_doubled() -> None:
    logic = _logic([(30, "GGrr"), (3, "yyrr"), (1, "rrrr"), (30, "rrGG"), (4, "rryy")])
    assert envelope_logic(logic, SignalSafety(all_red_s=2.5)) == 1  # only after the second
    states = [(p.get("duration"), p.get("state")) for p in logic.iter("phase")]
    assert states[2] == ("2.5", "rrrr") and states[-1] == ("2.5", "rrrr")


def test_a_network_file_is_rewritten_and_a_bad_one_named(tmp_path: Path) -> None:
    net = tmp_path / "n.net.xml"
    root = ET.Element("net")
    root.append(_logic(FIVE_LEG))
    ET.ElementTree(root).write(net)
    out = apply_envelope(net, tmp_path / "env" / "n.net.xml", SignalSafety())
    assert len(list(ET.parse(out).getroot().iter("phase"))) == 11
    (tmp_path / "bad.net.xml").write_text("<net><tlLogic")
    with pytest.raises(EnvelopeError, match=r"bad\.net\.xml"):
        apply_envelope(tmp_path / "bad.net.xml", tmp_path / "x.net.xml", SignalSafety())


def test_no_clearance_where_nothing_turns_green_as_after_a_through_yellow_into_its_turn() -> None:
    # netgenerate's grid: the through yellow leaves the permissive turn green into its own phase
    logic = _logic(
        [(29, "GGGggrr"), (4, "yyyggrr"), (6, "rrrGGrr"), (4, "rrryyrr"), (2, "rrrrrrr")]
    )
    assert envelope_logic(logic, SignalSafety()) == 0
    assert [p.get("duration") for p in logic.iter("phase")] == ["29", "4", "7", "4", "2"]


def test_a_nema_logic_keeps_its_phases_and_times_its_change_intervals_to_the_envelope() -> None:
    # a NEMA logic lists one phase per movement group and no yellows; its controller inserts
    # each phase's `yellow` and `red`: those, not new phases, carry the envelope
    logic = _logic(
        [(90, "GGggrrrr"), (90, "rrrrGGgg")], kind="NEMA", yellow="3", red="0", minDur="2",
        maxDur="120",
    )  # fmt: skip
    safety = SignalSafety()
    assert envelope_logic(logic, safety) == 0
    phases = list(logic.iter("phase"))
    assert [p.get("state") for p in phases] == ["GGggrrrr", "rrrrGGgg"]
    for p in phases:
        assert float(p.get("yellow", "0")) == max(3.0, safety.yellow_s)
        assert float(p.get("red", "0")) == safety.all_red_s > 0
        assert float(p.get("minDur", "0")) == safety.min_green_s
        assert float(p.get("maxDur", "0")) == float(p.get("duration", "0")) == safety.max_green_s


def test_the_envelope_leaves_out_the_phase_edgeward_leaves_out_and_so_has_no_conflict() -> None:
    # a divided road's joined cluster: opposite lefts protected together are foes (1, 3)
    joined = [(30, "GgGg"), (3, "ygyg"), (8, "rGrG"), (3, "ryry")]
    conflicts = ConflictMatrix.of(4, [(1, 2), (0, 3), (1, 3)])
    safety = SignalSafety()
    logic = _logic(joined)
    logic[3].set("next", "0")
    logic[1].set("next", "2")  # into the phase that goes
    end = sum(d for d, _ in joined) * 3.0
    before = check_sequence(_cycle(logic), safety, conflicts, end_time=end)
    assert "conflicting_greens" in {v.kind for v in before}

    envelope_logic(logic, safety, conflicts)
    states = [p.get("state") for p in logic.iter("phase")]
    assert "rGrG" not in states and states[:3] == ["GgGg", "ygyg", "ryry"]
    assert logic[1].get("next") == "2"  # now the lefts' yellow, which followed the dropped phase
    after = check_sequence(_cycle(logic), safety, conflicts, end_time=end)
    assert "conflicting_greens" not in {v.kind for v in after}


def test_without_a_matrix_the_envelope_keeps_every_phase() -> None:
    logic = _logic([(30, "GgGg"), (3, "ygyg"), (8, "rGrG"), (3, "ryry")])
    envelope_logic(logic, SignalSafety())
    assert "rGrG" in [p.get("state") for p in logic.iter("phase")]
