"""`edgeward monitor`: drift, fairness and canary reports."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward monitor: not built yet (issue 9)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "monitor",
        help="drift, fairness and canary reports",
        description="drift, fairness and canary reports.",
    )
    p.set_defaults(handler=_not_built)
