"""`edgeward edge`: run a clinic or traffic gateway, or check files offline."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward edge: not built yet (issues 4 and 6)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "edge",
        help="run a clinic or traffic gateway, or check files offline",
        description="run a clinic or traffic gateway, or check files offline.",
    )
    p.set_defaults(handler=_not_built)
