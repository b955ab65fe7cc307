"""`edgeward edge clinic` parsers."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

log = logging.getLogger(__name__)

DESCRIPTION = """\
Run a clinic gateway beside a fundus camera until stopped (SIGTERM or Ctrl-C).

Scans arrive from the watched folder (watch_dir), HTTP POST /scans and gRPC Submit; each is
recorded in SQLite under data_dir before anything else happens, judged on this box, and, if
gradable, sent to the cloud grader through a durable outbox. Verdicts and status go over MQTT.
GET /scans/{id} answers with the verdict, GET /metrics serves Prometheus metrics.

Environment: EDGEWARD_SITE_KEY (or the variable named by site_key_env) holds the secret that
pseudonymises patient and scan ids; EDGEWARD_MQTT_PASSWORD the broker password.
"""


def _run_clinic(args: argparse.Namespace) -> int:
    from edge.clinic.app import ClinicGateway
    from shared.config import ClinicGatewayConfig, load_config

    config = load_config(args.config, ClinicGatewayConfig)
    if args.data_dir is not None:
        config.data_dir = args.data_dir
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


def add_clinic_parsers(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "clinic",
        help="run a clinic gateway (ingest, judge, uplink, events, metrics)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="FILE",
        help="clinic gateway YAML (see deploy/config/clinic-gateway.yaml)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="override data_dir: where the SQLite records and outboxes live",
    )
    p.set_defaults(handler=_run_clinic)
    __import__("edge.clinic.check", fromlist=["add_check_parser"]).add_check_parser(cmds)  # C1
