"""`edgeward edge traffic` parsers."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward edge traffic: not built yet")
    return 0


def add_traffic_parsers(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "traffic",
        help="run a traffic gateway for one junction",
        description="run a traffic gateway for one junction.",
    )
    p.set_defaults(handler=_not_built)
