"""`edgeward sim traffic` parsers."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward sim traffic: not built yet")
    return 0


def add_traffic_parser(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "traffic",
        help="run a SUMO traffic scenario under a controller",
        description="run a SUMO traffic scenario under a controller.",
    )
    p.set_defaults(handler=_not_built)
