"""Bad scenario files and SUMO's own errors reach the user as clear messages."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from sim.traffic.harness import RunConfig, run
from sim.traffic.scenario import ScenarioError, build_scenario, parse_scenario
from sim.traffic.sumo_bin import SumoToolError, run_tool

pytestmark = pytest.mark.sumo

REPO = Path(__file__).resolve().parents[2]


def _no_tls_net(tmp_path: Path) -> Path:
    (tmp_path / "n.nod.xml").write_text(
        '<nodes><node id="a" x="0" y="0"/><node id="b" x="100" y="0"/>'
        '<node id="c" x="200" y="0"/></nodes>'
    )
    (tmp_path / "n.edg.xml").write_text(
        '<edges><edge id="ab" from="a" to="b"/><edge id="bc" from="b" to="c"/></edges>'
    )
    net = tmp_path / "plain.net.xml"
    args = ["-n", str(tmp_path / "n.nod.xml"), "-e", str(tmp_path / "n.edg.xml")]
    run_tool("netconvert", args, "test network", output=net)
    return net


def test_sumo_errors_reach_the_user_and_leave_nothing_in_tmp_when_the_out_dir_has_a_colon(
    tmp_path: Path,
) -> None:
    # SUMO reads "a:b" as host:port, so its error log goes to the shared temp dir instead
    tmp = Path(tempfile.gettempdir())
    before = {*tmp.glob("sumo-edgeward-*.errors.log"), *tmp.glob("edgeward-sumo-*")}
    bad_routes = tmp_path / "bad.rou.xml"
    bad_routes.write_text('<routes><trip id="x" depart="0" from="nope" to="J1_J2"/></routes>')
    net_src = REPO / "sim/traffic/networks/irregular.net.xml"
    with pytest.raises(SumoToolError, match=r"edge 'nope' within the route for trip 'x'"):
        run(
            RunConfig(
                str(net_src), "fixed", 1, tmp_path / "run:1", routes=[bad_routes], progress=False
            )
        )
    # nor the folder SUMO wrote its outputs to before it gave up
    assert {*tmp.glob("sumo-edgeward-*.errors.log"), *tmp.glob("edgeward-sumo-*")} == before


def test_bad_scenario_files_give_clear_messages(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sumocfg"
    broken.write_text("<configuration><input><net-file value='x.net.xml'></input>")
    with pytest.raises(ScenarioError, match=r"broken.sumocfg is not valid XML: .*line 1"):
        build_scenario(parse_scenario(str(broken)), tmp_path / "w1", seed=1, minutes=1)

    cfg = tmp_path / "noroutes.sumocfg"
    net_src = REPO / "sim/traffic/networks/irregular.net.xml"
    cfg.write_text(
        f'<configuration><input><net-file value="{net_src}"/>'
        '<route-files value="gone.rou.xml"/></input></configuration>'
    )
    with pytest.raises(ScenarioError, match=r"route file .*gone.rou.xml does not exist"):
        build_scenario(parse_scenario(str(cfg)), tmp_path / "w2", seed=1, minutes=1)

    plain = _no_tls_net(tmp_path)
    with pytest.raises(ScenarioError, match=r"has no traffic lights.*netconvert --tls\.guess"):
        build_scenario(parse_scenario(str(plain)), tmp_path / "w3", seed=1, minutes=1)

    bad_routes = tmp_path / "bad.rou.xml"
    bad_routes.write_text('<routes><trip id="x" depart="0" from="nope" to="J1_J2"/></routes>')
    with pytest.raises(SumoToolError, match=r"edge 'nope' within the route for trip 'x'"):
        run(
            RunConfig(
                str(net_src), "fixed", 1, tmp_path / "w5", routes=[bad_routes], progress=False
            )
        )

    not_a_net = tmp_path / "routes.net.xml"
    not_a_net.write_text("<routes/>")
    with pytest.raises(ScenarioError, match=r"has root <routes>, expected <net>"):
        build_scenario(parse_scenario(str(not_a_net)), tmp_path / "w4", seed=1, minutes=1)
