"""`edgeward certs`: make a CA, then server and per-device client certificates."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.security.apikeys import KEY_FILE_ENV, ROLES, new_key
from shared.security.pki import Issued, PkiError, init_ca, issue_device, issue_server
from shared.security.signing import (
    PUBLIC_KEY_ENV,
    SIGNING_KEY_ENV,
    load_private_key,
    make_keypair,
)


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


def _model_key(args: argparse.Namespace) -> int:
    private, public = make_keypair(args.dir, force=args.force)
    print(
        f"model signing key {private} (mode 0600: keep it where models are promoted, "
        f"export {SIGNING_KEY_ENV}={private} there); public key {public} (give it to every "
        f"gateway and replica as {PUBLIC_KEY_ENV})"
    )
    return 0


def _sign_model(args: argparse.Namespace) -> int:
    # Imported here: `edgeward certs` must work without the registry's dependencies.
    from shared.registry import Registry

    registry = Registry(args.registry, signing_key=load_private_key(args.key), use_env=False)
    if args.version:
        manifest = registry.manifest(args.name, args.version)
    else:
        champion = registry.champion(args.name)
        if champion is None:
            raise PkiError(f"no champion of {args.name!r} in {args.registry}; give a VERSION")
        manifest = champion
    signed = registry.sign(manifest)
    print(f"signed {signed.model_id}: {', '.join(sorted(signed.signatures))}")
    return 0


def _api_key(args: argparse.Namespace) -> int:
    key, line = new_key(args.role, args.name)
    print(f"key (give it to {args.role} {args.name}; it is shown only now): {key}")
    print(f"line for the file named by {KEY_FILE_ENV}: {line}")
    return 0


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
    k = cmds.add_parser("model-key", help="create the Ed25519 key pair that signs model manifests")
    k.add_argument("--dir", type=Path, default=Path("certs"), help="where to write the pair")
    k.add_argument("--force", action="store_true", help="replace an existing pair")
    k.set_defaults(handler=_model_key)
    m = cmds.add_parser(
        "sign-model", help="sign a registered model version (default: its champion)"
    )
    m.add_argument("name", help="model name, e.g. fundus-triage")
    m.add_argument("version", nargs="?", help="version number (default: the champion)")
    m.add_argument("--registry", type=Path, required=True, help="registry directory")
    m.add_argument("--key", type=Path, required=True, help="model-signing.key")
    m.set_defaults(handler=_sign_model)
    a = cmds.add_parser("api-key", help="make a cloud HTTP API key; prints it and its hash line")
    a.add_argument("role", choices=ROLES, help="site (uploads, own results), reviewer, admin")
    a.add_argument("name", help="the site id, the reviewer's name or the operator's")
    a.set_defaults(handler=_api_key)
