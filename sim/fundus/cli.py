"""`edgeward sim fundus` parsers."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward sim fundus: not built yet")
    return 0


def add_fundus_parser(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "fundus",
        help="write synthetic fundus photographs with labels",
        description="write synthetic fundus photographs with labels.",
    )
    p.set_defaults(handler=_not_built)
