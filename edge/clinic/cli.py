"""`edgeward edge clinic` parsers."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import ClinicGatewayConfig

log = logging.getLogger(__name__)

DESCRIPTION = """\
Run a clinic gateway beside a fundus camera until stopped (SIGTERM or Ctrl-C).

Scans arrive from the watched folder (watch_dir), HTTP POST /scans, gRPC Submit and, with
dicom.scp set, DICOM C-STORE; each is recorded in SQLite under data_dir before it is
acknowledged, judged on this box, and, if gradable, sent to the cloud grader through a durable
outbox (dead letters after the attempt limits: see the dead-letters and retry commands).
Verdicts and status go over MQTT; with dicom.pacs / dicom.fhir set, final results go to the
PACS as a DICOM SR and PDF and to the EHR as FHIR. GET /scans/{id} answers with the verdict,
GET /status with health and dead letters, GET /metrics serves Prometheus metrics.

Environment (never the config file): EDGEWARD_SITE_KEY (or the variable named by site_key_env),
at least 32 bytes, pseudonymises patient and scan ids; EDGEWARD_GATEWAY_TOKEN holds the
client=token pairs the HTTP and gRPC APIs require; EDGEWARD_MQTT_PASSWORD the broker password.
"""


def _load(args: argparse.Namespace) -> ClinicGatewayConfig:
    from shared.config import ClinicGatewayConfig, load_config

    if getattr(args, "config", None) is None:
        raise SystemExit("edgeward edge clinic: --config FILE is required")
    config = load_config(args.config, ClinicGatewayConfig)
    if getattr(args, "data_dir", None) is not None:
        config.data_dir = args.data_dir
    return config


def _dead_letters(args: argparse.Namespace) -> int:
    """Open the gateway database beside a running gateway (SQLite WAL allows it) or alone."""
    from edge.clinic.database import Database
    from edge.clinic.delivery import DeadLetters
    from edge.outbox import Outbox

    config = _load(args)
    db = Database(Path(config.data_dir) / "gateway.db")
    try:
        letters = DeadLetters(Outbox(db))
        if args.clinic_command == "retry":
            if not args.all and not args.scan_id:
                raise SystemExit("edgeward edge clinic retry: name a scan id, or pass --all")
            revived = letters.retry(None if args.all else args.scan_id)
            if args.scan_id and not revived:
                print(
                    f"no dead letter for scan {args.scan_id!r}; see `edgeward edge clinic "
                    "dead-letters`"
                )
                return 1
            for scan_id in revived:
                print(f"queued again: {scan_id}")
            return 0
        listing = letters.listing()
        if args.json:
            print(json.dumps(listing, indent=2))
        elif not listing:
            print("no dead letters: every scan is graded, rejected for good, or in the queue")
        for item in [] if args.json else listing:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(item["dead_at"]))
            print(
                f"{item['scan_id']}  {item['error_class']}  {item['attempts']} attempts  "
                f"{when} UTC  {item['last_error']}"
            )
        return 0
    finally:
        db.close()


def _run_clinic(args: argparse.Namespace) -> int:
    from edge.clinic.app import ClinicGateway

    config = _load(args)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: stopping the gateway", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    gateway = ClinicGateway(config).start()
    try:
        stop.wait()
    finally:
        gateway.stop()
    return 0


def _config_args(p: argparse.ArgumentParser, default: object) -> None:
    # SUPPRESS on the subcommands: an option given before the subcommand is not overwritten.
    p.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="FILE",
        help="clinic gateway YAML (see deploy/config/clinic-gateway.yaml)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        metavar="DIR",
        help="override data_dir: where the SQLite records and outboxes live",
    )


def add_clinic_parsers(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "clinic",
        help="run a clinic gateway (ingest, judge, uplink, events, metrics)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_args(p, None)
    p.set_defaults(handler=_run_clinic)
    sub = p.add_subparsers(dest="clinic_command", metavar="COMMAND")
    dl = sub.add_parser(
        "dead-letters",
        help="list the scans the cloud uplink gave up on",
        description="List the dead letters: scans past their attempt bound or refused for good.",
    )
    _config_args(dl, argparse.SUPPRESS)
    dl.add_argument("--json", action="store_true", help="print JSON")
    dl.set_defaults(handler=_dead_letters)
    retry = sub.add_parser(
        "retry",
        help="queue dead letters for the cloud again",
        description="Put a dead letter (or all of them) back at the tail of the upload queue; "
        "a running gateway sends it within a second.",
    )
    _config_args(retry, argparse.SUPPRESS)
    retry.add_argument("scan_id", nargs="?", metavar="ID", help="the scan to send again")
    retry.add_argument("--all", action="store_true", help="every dead letter")
    retry.set_defaults(handler=_dead_letters)
    __import__("edge.clinic.check", fromlist=["add_check_parser"]).add_check_parser(cmds)  # C1
