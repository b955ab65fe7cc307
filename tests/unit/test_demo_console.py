"""The demo never goes silent for long: a step with an activity gets a status line when quiet."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

from sim.demo.console import Console
from sim.demo.supervisor import Supervisor
from sim.demo.traffic import TrafficPlan, progress


def test_a_quiet_step_gets_its_status_line_and_a_chatty_one_does_not() -> None:
    out = io.StringIO()
    say = Console(t0=0.0, stream=out, every_s=20.0)
    say("traffic: runs started", now=0.0)
    with say.during(lambda: "traffic: 2.0 of ~8 simulated minutes elapsed"):
        say.beat(now=19.0)  # 19 s quiet: not yet
        assert out.getvalue().count("\n") == 1
        say.beat(now=20.5)
        assert out.getvalue().splitlines()[-1] == (
            "[  20.5s] traffic: 2.0 of ~8 simulated minutes elapsed"
        )
        say("clinic-1: scan s1 -> refer", now=30.0)  # a real line resets the silence
        say.beat(now=45.0)
    assert out.getvalue().count("\n") == 3
    say.beat(now=200.0)  # no activity after the block: nothing to report
    assert out.getvalue().count("\n") == 3


def test_the_inner_activity_wins_and_the_outer_one_comes_back() -> None:
    say = Console(t0=0.0, stream=io.StringIO(), every_s=1.0)
    with say.during(lambda: "outer"):
        with say.during(lambda: "inner"):
            assert say.heartbeat_line(5.0) == "inner"
        assert say.heartbeat_line(5.0) == "outer"
    assert say.heartbeat_line(5.0) is None


def test_traffic_status_says_how_far_the_runs_are_and_which_are_done(tmp_path: Path) -> None:
    plan = TrafficPlan("grid:2x2:rush", 8.0, 1, tmp_path, tmp_path, tmp_path)
    plan.started_at = time.monotonic() - 150.0  # the paced run started 2.5 min ago
    with Supervisor(tmp_path / "logs", dict(os.environ)) as sup:
        runs = {"edgeward": sup.start("e", ["sleep", "30"]), "fixed": sup.start("f", ["true"])}
        assert runs["fixed"].wait(timeout=30) == 0
        line = progress(plan, runs)
    assert re.match(r"traffic: 2\.[5-9] of ~8 simulated minutes elapsed", line), line
    assert line.endswith("(paced in real time; edgeward running, fixed done)")
