"""`edgeward demo`: run the whole system end to end and write a report."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward demo: not built yet (issue 8)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole system end to end and write a report",
        description="run the whole system end to end and write a report.",
    )
    p.set_defaults(handler=_not_built)
