"""The `edgeward` command: sub-commands are discovered from the tiers' entry points.

shared/ must not import a tier, so each tier registers its own sub-command under the
`edgeward.commands` entry-point group (see pyproject.toml) and is imported only when found.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from shared.errors import EdgewardError

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# Order in `--help`: the main job first, then by tier.
_ORDER = ["demo", "models", "sim", "edge", "cloud", "bench", "monitor", "config"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeward",
        description=(
            "Edge-plus-cloud inference that stays safe when things break.\n"
            "Clinic gateways grade retinal scans; traffic gateways run signals; "
            "the cloud tier (Ray Serve) explains and coordinates."
        ),
        epilog="Run `edgeward COMMAND --help` for the options of one command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    found = {ep.name: ep for ep in entry_points(group="edgeward.commands")}
    for name in sorted(found, key=lambda n: (_ORDER.index(n) if n in _ORDER else 99, n)):
        register: Register = found[name].load()
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        code = handler(args)
    except EdgewardError as exc:
        print(f"edgeward: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeward: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
