"""`edgeward cloud users`: review-desk accounts, made by an admin at the cloud's database.

The password comes from a prompt or $EDGEWARD_DESK_PASSWORD, never from a file or an argument
(an argument lands in the shell history and in `ps`).
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from cloud.review_desk.accounts import ROLES, AccountError, Accounts
from cloud.store import CloudStore
from shared.config import CloudConfig, load_config

PASSWORD_ENV = "EDGEWARD_DESK_PASSWORD"


def _store(config_path: Path | None) -> CloudStore:
    config = load_config(config_path, CloudConfig) if config_path else CloudConfig()
    return CloudStore(config.data_dir)


def _password(name: str) -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    first = getpass.getpass(f"password for {name}: ")
    if first != getpass.getpass(f"password for {name} again: "):
        raise AccountError(f"the two passwords for {name!r} differ; run the command again")
    return first


def _add(args: argparse.Namespace) -> int:
    store = _store(args.config)
    try:
        user = Accounts(store.engine).add(args.name, args.role, _password(args.name))
    finally:
        store.close()
    print(f"review desk: {user.role} {user.name!r} created; log in at /desk/login")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args.config)
    try:
        for user in Accounts(store.engine).users():
            print(f"{user.name}\t{user.role}")
    finally:
        store.close()
    return 0


def register_users(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = cmds.add_parser(
        "users",
        help="review-desk accounts (reviewers and admins)",
        description="Accounts of the browser review desk (/desk), kept in the cloud store.",
    )
    sub = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)
    add = sub.add_parser(
        "add",
        help="create an account",
        description=f"Create an account; the password is asked twice or read from ${PASSWORD_ENV}",
    )
    add.add_argument("name", help="login name (letters, digits, '.', '_', '-')")
    add.add_argument("--role", choices=ROLES, default="reviewer", help="default: reviewer")
    add.add_argument("--config", type=Path, help="cloud config YAML (for its data_dir)")
    add.set_defaults(handler=_add)
    ls = sub.add_parser("list", help="list the accounts and their roles")
    ls.add_argument("--config", type=Path, help="cloud config YAML (for its data_dir)")
    ls.set_defaults(handler=_list)
