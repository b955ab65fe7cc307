"""`edgeward sim`: generate synthetic scans and run traffic scenarios."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward sim: not built yet (issues 3 and 6)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sim",
        help="generate synthetic scans and run traffic scenarios",
        description="generate synthetic scans and run traffic scenarios.",
    )
    p.set_defaults(handler=_not_built)
