"""`edgeward sim traffic` run as a user runs it: the installed console script, output checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sim.traffic.sumo_bin import run_tool

EDGEWARD = Path(sys.executable).with_name("edgeward")


def sim_traffic(*args: str, timeout: float = 300) -> str:
    """Its stdout; a non-zero exit fails the test with the end of stderr."""
    proc = subprocess.run(
        [str(EDGEWARD), "sim", "traffic", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def edgeward_run(net: Path, out: Path, minutes: str) -> dict[str, Any]:
    """A short edgeward run on SUMO's own counts; its summary.json."""
    sim_traffic(
        "--scenario", str(net), "--controller", "edgeward", "--counter", "truth",
        "--minutes", minutes, "--no-progress", "--out", str(out),
    )  # fmt: skip
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def signal_grid(out: Path, n: int, *options: str) -> Path:
    """An n x n grid of traffic lights from netgenerate, with these extra options."""
    run_tool(
        "netgenerate",
        [
            "--grid", "--grid.number", str(n), "--default-junction-type", "traffic_light",
            *options, "--output-file", str(out),
        ],
        "netgenerate",
    )  # fmt: skip
    return out
