"""`edgeward sim`: the digital twins (fundus scans, traffic) as commands."""

from __future__ import annotations

import argparse

from sim.fundus.cli import add_fundus_parser
from sim.traffic.cli import add_traffic_parser


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sim",
        help="generate synthetic scans and run traffic scenarios",
        description="Digital twins: synthetic fundus photographs and SUMO traffic scenarios.",
    )
    cmds = p.add_subparsers(dest="sim_command", metavar="TWIN", required=True)
    add_fundus_parser(cmds)
    add_traffic_parser(cmds)
