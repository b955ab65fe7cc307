"""`edgeward config check FILE...`: validate config files before deploying them."""

from __future__ import annotations

import argparse
import json

from shared.config.loader import ROLES, load_any_config
from shared.errors import ConfigError


def _check(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        try:
            cfg = load_any_config(path)
        except ConfigError as exc:
            print(exc)
            bad += 1
            continue
        print(f"{path}: ok ({cfg.role})")
        if args.show:
            print(json.dumps(cfg.model_dump(mode="json"), indent=2))
    return 1 if bad else 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(ROLES[args.role].model_json_schema(), indent=2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config",
        help="validate configuration files",
        description="Validate role config files (clinic_gateway, traffic_gateway, cloud).",
    )
    cmds = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = cmds.add_parser(
        "check",
        help="validate files; report each bad key by line, path, value and reason",
        description="Exit status 0 if every file is valid, 1 otherwise.",
    )
    c.add_argument("files", nargs="+", help="YAML files with a `role:` key")
    c.add_argument("--show", action="store_true", help="print the resolved config with defaults")
    c.set_defaults(handler=_check)
    s = cmds.add_parser("schema", help="print the JSON schema of a role's config")
    s.add_argument("role", choices=sorted(ROLES))
    s.set_defaults(handler=_schema)
