"""`edgeward edge clinic` parsers."""

from __future__ import annotations

import argparse


def _not_built(args: argparse.Namespace) -> int:
    print("edgeward edge clinic: not built yet")
    return 0


def add_clinic_parsers(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser("clinic", help="run a clinic gateway", description="run a clinic gateway.")
    p.set_defaults(handler=_not_built)
