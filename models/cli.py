"""`edgeward models`: build, list, export and promote models in the registry."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward models: not built yet (issue 3)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "models",
        help="build, list, export and promote models in the registry",
        description="build, list, export and promote models in the registry.",
    )
    p.set_defaults(handler=_not_built)
