"""The safe applier on real SUMO lights: asked for the longest greens, every link's green run
(across green->green phases and other movements' yellows) stays within max green, as the
twin's own safety monitor judges it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from edge.traffic.applier import SafeApplier
from shared.config.traffic import SignalSafety
from sim.traffic.controllers import SimContext
from sim.traffic.dataset import IRREGULAR
from sim.traffic.harness import RunConfig, run

pytestmark = pytest.mark.sumo

MAX_GREEN_S = 35.0  # tight enough that netconvert's through + protected-left chains hit it


class _GreedyPlans:
    """Every junction through a SafeApplier whose plan wants the longest greens it can get."""

    name = "greedy-applier"

    def start(self, ctx: SimContext) -> None:
        self.appliers = [SafeApplier(ctx.port(j.junction_id), ctx.safety) for j in ctx.junctions]
        for a in self.appliers:
            a.set_targets(dict.fromkeys(a.green_phases, 1000.0), "test")

    def step(self, sim_time: float) -> None:
        for a in self.appliers:
            a.step()

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("scenario", ["grid:2x2:rush", IRREGULAR])
def test_longest_plans_keep_every_link_green_run_within_max_green(
    tmp_path: Path, scenario: str
) -> None:
    safety = SignalSafety(max_green_s=MAX_GREEN_S, max_plan_change_s=120)
    ctl = _GreedyPlans()
    summary = run(
        RunConfig(scenario, "fixed", 6, tmp_path, safety=safety, progress=False), controller=ctl
    )
    assert summary["safety_violations"] == 0, summary["safety_by_kind"]
    # the per-link limit really acted: some green ended well before its (maximal) target
    # because a link green in it stays green into the phases after it
    cut = [
        b.time - a.time
        for applier in ctl.appliers
        for a, b in itertools.pairwise(applier.switches[1:])
        if applier.program[a.phase].kind == "green"
        and b.time - a.time < applier.targets[a.phase] - 1.0
    ]
    assert cut, "no green was shortened for a link's run"
