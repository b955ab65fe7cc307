"""`edgeward cloud`: run the Ray Serve cloud tier."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward cloud: not built yet (issue 5)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cloud", help="run the Ray Serve cloud tier", description="run the Ray Serve cloud tier."
    )
    p.set_defaults(handler=_not_built)
