"""`edgeward edge`: run a gateway, or check files offline with the gateway's pipeline."""

from __future__ import annotations

import argparse

from edge.clinic.cli import add_clinic_parsers
from edge.traffic.cli import add_traffic_parsers


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "edge",
        help="run a clinic or traffic gateway, or check files offline",
        description="Gateway processes: clinic (retinal scans) and traffic (one junction).",
    )
    cmds = p.add_subparsers(dest="edge_command", metavar="ACTION", required=True)
    add_clinic_parsers(cmds)
    add_traffic_parsers(cmds)
