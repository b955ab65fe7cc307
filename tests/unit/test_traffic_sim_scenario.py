"""Scenario specs are validated with messages that show the accepted syntax; metrics add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.traffic.demand import rate_factor
from sim.traffic.metrics import Trip, delay_series, summarise
from sim.traffic.scenario import ScenarioError, parse_scenario, sumo_time


def test_generated_specs_parse_with_profiles() -> None:
    spec = parse_scenario("grid:4x4:rush")
    assert (spec.kind, spec.rows, spec.cols, spec.profile) == ("grid", 4, 4, "rush")
    assert parse_scenario("arterial:1x6").profile == "steady"
    assert parse_scenario("grid:2x3:asymmetric").name == "grid:2x3:asymmetric"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("grid:4by4", "grid:RxC[:PROFILE]"),
        ("grid:4x4:lunch", "profile 'lunch' is unknown"),
        ("grid:0x4", "out of range"),
        ("grid:1x1", "out of range"),
        ("arterial:2x6", "an arterial is one road; write arterial:1x6"),
        ("nowhere.sumocfg", "neither a generated scenario"),
    ],
)
def test_bad_scenario_spec_says_what_to_write(text: str, says: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    assert says in str(err.value)


def test_unknown_file_type_and_missing_routes_are_refused(tmp_path: Path) -> None:
    odd = tmp_path / "city.osm"
    odd.write_text("<osm/>")
    with pytest.raises(ScenarioError, match=r"unknown type; give a \.sumocfg or a \.net\.xml"):
        parse_scenario(str(odd))
    net = tmp_path / "city.net.xml"
    net.write_text("<net/>")
    with pytest.raises(ScenarioError, match=r"route file .*missing\.rou\.xml does not exist"):
        parse_scenario(str(net), routes=[tmp_path / "missing.rou.xml"])


def test_rush_profile_peaks_mid_run() -> None:
    assert rate_factor("steady", 900, 1800) == 1.0
    assert rate_factor("rush", 900, 1800) > 1.6
    assert rate_factor("rush", 0, 1800) < 0.7


def test_vehicles_never_inserted_count_their_wait_as_delay() -> None:
    trips = [
        Trip("a", 0, 100, 20.0, 10.0, 1),
        Trip("b", 10, -1, 40.0, 30.0, 3),  # still driving at the end
        Trip("c", 50, -1, 250.0, 0.0, 0, inserted=False),  # never got in
    ]
    s = summarise(trips, 300.0)
    assert s["mean_delay_s"] == pytest.approx((20 + 40 + 250) / 3, abs=0.01)
    assert s["mean_waiting_s"] == 20.0  # over the vehicles that drove
    assert (s["throughput"], s["unfinished"], s["never_inserted"]) == (1, 1, 1)
    assert s["stops"] == 2.0
    assert delay_series(trips, 300.0, 60.0) == [None, 20.0, None, None, 145.0]


def test_sumo_times_read_as_sumo_reads_them() -> None:
    assert sumo_time("54000") == sumo_time("15:0:0") == sumo_time("15:00:00") == 54000.0
    assert sumo_time("1:0:0:0") == 86400.0 and sumo_time("2:30") == 150.0
    for bad in ("fifteen", "1::2", "1:2:3:4:5", "nan", ""):
        with pytest.raises(ValueError):
            sumo_time(bad)
