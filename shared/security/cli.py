"""`edgeward certs`: make a CA, then server and per-device client certificates."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.security.pki import Issued, init_ca, issue_device, issue_server


def _report(what: str, issued: Issued) -> int:
    print(f"{what}: certificate {issued.cert}, private key {issued.key} (mode 0600)")
    return 0


def _init(args: argparse.Namespace) -> int:
    return _report("CA", init_ca(args.dir, args.cn, days=args.days, force=args.force))


def _server(args: argparse.Namespace) -> int:
    issued = issue_server(
        args.dir, args.name, dns=args.dns, ips=args.ip, days=args.days, force=args.force
    )
    return _report(f"server {args.name}", issued)


def _device(args: argparse.Namespace) -> int:
    return _report(
        f"device {args.id}", issue_device(args.dir, args.id, days=args.days, force=args.force)
    )


def _common(p: argparse.ArgumentParser, days: int) -> None:
    p.add_argument(
        "--dir", type=Path, default=Path("certs"), help="directory holding ca.key/ca.crt"
    )
    p.add_argument("--days", type=int, default=days, help=f"validity in days (default {days})")
    p.add_argument("--force", action="store_true", help="replace existing files")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "certs",
        help="make a CA and TLS certificates for brokers, servers and gateways",
        description=(
            "A small PKI: `init` makes a CA; `server` a TLS server certificate with the names "
            "clients dial; `device` a client certificate whose CN is the gateway id. Keys are "
            "written 0600 and never overwritten without --force."
        ),
    )
    cmds = p.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    i = cmds.add_parser("init", help="create a new CA (ca.key, ca.crt)")
    _common(i, 3650)
    i.add_argument("--cn", default="edgeward CA", help="the CA's common name")
    i.set_defaults(handler=_init)
    s = cmds.add_parser("server", help="issue a server certificate NAME.crt/NAME.key")
    s.add_argument("name", help="file name and CN, e.g. broker")
    s.add_argument("--dns", action="append", default=[], help="a DNS name (repeatable)")
    s.add_argument("--ip", action="append", default=[], help="an IP address (repeatable)")
    _common(s, 825)
    s.set_defaults(handler=_server)
    d = cmds.add_parser("device", help="issue a client certificate whose CN is the device id")
    d.add_argument("id", help="gateway/device id, e.g. J3 or clinic-a-gw1")
    _common(d, 825)
    d.set_defaults(handler=_device)
