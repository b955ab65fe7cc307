"""Fault specs parse into a schedule; every malformed spec says what is wrong."""

from __future__ import annotations

import pytest

from sim.traffic.faults import FaultSchedule, FaultSpecError, parse_fault


def test_every_fault_kind_parses() -> None:
    assert parse_fault("cloud_down@300-900").kind == "cloud_down"
    assert parse_fault("broker_down@300-600").end_s == 600
    kill = parse_fault("gateway_kill:J1@200-400")
    assert (kill.kind, kill.junction) == ("gateway_kill", "J1")
    cam = parse_fault("camera:J2:north:frozen@100-300")
    assert (cam.junction, cam.approach, cam.mode) == ("J2", "north", "frozen")
    assert parse_fault("uplink_delay:2.5@0-600").delay_s == 2.5


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("cloud_down", "expected KIND[:ARGS]@START-END"),
        ("cloud_down@900-300", "must be after start"),
        ("cloud_down@abc-300", "'abc' is not a number"),
        ("meteor@1-2", "kind 'meteor' is unknown"),
        ("cloud_down:x@1-2", "cloud_down takes 0 argument"),
        ("gateway_kill@1-2", "gateway_kill:JUNCTION@START-END"),
        ("camera:J2:north@1-2", "camera:JUNCTION:APPROACH:MODE"),
        ("camera:J2:north:melted@1-2", "mode 'melted' is unknown"),
        ("uplink_delay:soon@1-2", "delay 'soon' is not a number"),
        ("gateway_kill:@1-2", "the junction is empty"),
    ],
)
def test_bad_fault_spec_names_the_problem(spec: str, says: str) -> None:
    with pytest.raises(FaultSpecError) as err:
        parse_fault(spec)
    assert says in str(err.value)
    assert spec in str(err.value)


def test_schedule_reports_active_faults_by_time() -> None:
    s = FaultSchedule.parse(["cloud_down@100-200", "camera:J1:east:black@150-160"])
    assert [f.kind for f in s.active(50)] == []
    assert [f.kind for f in s.active(155)] == ["cloud_down", "camera"]
    assert s.active(200) == []  # the end is exclusive
    assert s.camera_fault(155, "J1", ("east", "E_J1")) == "black"
    assert s.camera_fault(155, "J1", ("west", "W_J1")) is None


def test_schedule_rejects_names_the_network_does_not_have() -> None:
    junctions = {"J1": ["north", "N_J1"], "J2": ["east"]}
    with pytest.raises(FaultSpecError, match=r"'J9' is not a traffic light.*J1, J2"):
        FaultSchedule.parse(["gateway_kill:J9@1-2"]).validate(junctions)
    with pytest.raises(FaultSpecError, match="no approach 'south'; its approaches are north"):
        FaultSchedule.parse(["camera:J1:south:blur@1-2"]).validate(junctions)
    FaultSchedule.parse(["camera:J1:N_J1:blur@1-2"]).validate(junctions)  # edge id works too
