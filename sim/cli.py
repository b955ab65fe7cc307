"""`edgeward sim`: the digital twins (fundus scans, traffic) as commands."""

from __future__ import annotations

import argparse

from sim.datasets.cli import add_datasets_parser
from sim.fundus.cli import add_fundus_parser
from sim.traffic.cli import add_traffic_parser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sim",
        help="generate synthetic scans, run traffic scenarios, render training data",
        description=(
            "Digital twins: synthetic fundus photographs, SUMO traffic scenarios and the "
            "model factory's training data."
        ),
    )
    cmds = p.add_subparsers(dest="sim_command", metavar="TWIN", required=True)
    add_fundus_parser(cmds)
    add_traffic_parser(cmds)
    add_datasets_parser(cmds)
