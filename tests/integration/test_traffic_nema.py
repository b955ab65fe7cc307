"""A network whose lights are NEMA dual-ring controllers (netconvert's `--tls.default-type NEMA`,
as North American networks are built) is driven by edgeward like any other. Before, every light
was refused ("green to red without yellow": a NEMA program lists no yellows, its controller times
them) and left to its own logic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sim_cli import edgeward_run, signal_grid, sim_traffic

pytestmark = pytest.mark.sumo


def test_a_nema_network_is_driven_safely_at_every_light(tmp_path: Path) -> None:
    net = signal_grid(
        tmp_path / "nema.net.xml", 2, "--grid.attach-length", "100", "--tls.default-type", "NEMA"
    )
    assert 'type="NEMA"' in net.read_text()
    described = sim_traffic("--scenario", str(net), "--describe")
    # two paired greens, each with its yellow, at each of the four lights
    assert described.count("4 approaches, 4 phases") == 4, described
    summary = edgeward_run(net, tmp_path / "run", "2")
    assert summary["not_driven"] == {}, summary["not_driven"]
    assert summary["controlled_junctions"] == summary["junctions"] >= 4
    assert summary["throughput"] > 0
    assert summary["safety_violations"] == 0, summary["safety_by_kind"]
