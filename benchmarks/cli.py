"""`edgeward bench`: measure every model on every backend this host offers."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward bench: not built yet (issue 7)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="measure every model on every backend this host offers",
        description="measure every model on every backend this host offers.",
    )
    p.set_defaults(handler=_not_built)
