"""`edgeward edge traffic`: run one junction's gateway until stopped."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path

from shared.errors import ConfigError

log = logging.getLogger(__name__)

DESCRIPTION = """\
Run the traffic gateway of one signalised junction until stopped (SIGTERM or Ctrl-C).

Every control interval it checks each approach camera (frozen, black, blurred, obstructed),
counts queued and approaching vehicles with the registry's traffic-counter model, publishes
the counts over MQTT (QoS 1, through a durable outbox), and applies the cloud's plan through
the safe applier, falling back to local actuation (cloud or broker lost) or the junction's
fixed schedule (camera unhealthy as well, or a bad plan). Mode changes are published.

The junction is described by two files written from the network (the twin writes them):
--layout (approaches and their signal links) and --program (the static phases). With --ntcip
it drives an NTCIP 1202 controller over SNMP (edge/traffic/ntcip.py); without it the applier's
switches are only logged (edge/traffic/console_port.py).
Environment: EDGEWARD_MQTT_PASSWORD holds the broker password if mqtt.username is set.
"""


def _camera(text: str) -> tuple[str, str]:
    approach, sep, url = text.partition("=")
    if not sep or not approach or not url:
        raise argparse.ArgumentTypeError(
            f"camera {text!r} must look like APPROACH=URL, e.g. north=rtsp://10.0.0.5/stream"
        )
    return approach, url


def _run_traffic(args: argparse.Namespace) -> int:
    from edge.traffic.console_port import ConsoleSignalPort, load_program
    from edge.traffic.counter import ModelCounter
    from edge.traffic.frames import VideoCaptureSource
    from edge.traffic.gateway import TrafficGateway
    from edge.traffic.layout import JunctionLayout
    from edge.traffic.link import TrafficLink
    from edge.traffic.program import validate_program
    from edge.traffic.signal_port import SignalPort
    from edge.traffic.watchdog import Watchdog
    from shared.config import TrafficGatewayConfig, load_config
    from shared.traffic.ids import file_stem
    from shared.traffic.network_conflicts import conflicts_from_net

    config = load_config(args.config, TrafficGatewayConfig)
    layout = JunctionLayout.load(args.layout)
    program = load_program(args.program)
    if layout.junction_id != config.junction_id:
        raise ConfigError(
            f"layout {args.layout} is for junction {layout.junction_id!r}, the config for "
            f"{config.junction_id!r}; give the matching files"
        )
    cameras = dict(args.camera)
    missing = [a.approach_id for a in layout.approaches if a.approach_id not in cameras]
    if missing:
        raise ConfigError(
            f"no --camera for approach(es) {', '.join(missing)} of junction "
            f"{config.junction_id}; add --camera APPROACH=URL for each"
        )
    conflicts = (
        conflicts_from_net(config.network_file, config.junction_id)
        if config.network_file is not None
        else None
    )
    validate_program(config.junction_id, program, conflicts)  # names the phase that is wrong
    if args.validate:
        pairs = "every pair" if conflicts is None else f"{len(conflicts.foes)} pairs"
        print(
            f"ok: junction {config.junction_id}, {len(layout.approaches)} approaches, "
            f"{len(program)} phases, conflicting links: {pairs}"
        )
        return 0
    port: SignalPort
    if args.ntcip is not None:
        from edge.traffic.ntcip import NtcipSignalPort

        ntcip = NtcipSignalPort.from_file(
            config.junction_id, program, set(args.crossing_phase), args.ntcip
        )
        ntcip.check_clearance(config.safety)  # the controller times what the applier assumes
        port = ntcip
    else:
        port = ConsoleSignalPort(config.junction_id, program, set(args.crossing_phase))
    counter = ModelCounter(config.registry_dir, config.counter_model, config.backend)
    holder: list[TrafficGateway] = []

    def on_plan(payload: bytes) -> None:
        holder[0].receive_plan(payload)

    link = TrafficLink(
        config.mqtt,
        config.junction_id,
        config.data_dir / f"{file_stem(config.junction_id)}.outbox.sqlite",
        on_plan,
    )
    gateway = TrafficGateway(
        config,
        port,
        layout,
        frames=VideoCaptureSource(cameras),
        counter=counter,
        link=link,
        wall_clock=time.time,  # plans expire on wall time; phases are timed on the port's
        conflicts=conflicts,
    )
    holder.append(gateway)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: stopping the traffic gateway", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    link.start()
    # a stalled loop or a hung camera read must not hold a yellow: hand the junction back
    watchdog = Watchdog(config.watchdog_s, lambda _: port.release()).start()
    try:
        while not stop.wait(0.2):
            gateway.step()
            watchdog.kick()
    finally:
        watchdog.stop()
        link.stop()
    return 0


def add_traffic_parsers(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "traffic",
        help="run a traffic gateway for one junction",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, required=True, help="traffic_gateway YAML config")
    p.add_argument("--layout", type=Path, required=True, help="junction layout JSON")
    p.add_argument("--program", type=Path, required=True, help="static signal program JSON")
    p.add_argument(
        "--camera",
        type=_camera,
        action="append",
        default=[],
        metavar="APPROACH=URL",
        help="camera of one approach (repeatable; URL is anything OpenCV opens)",
    )
    p.add_argument(
        "--crossing-phase",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="phase index that gives pedestrians green (repeatable)",
    )
    p.add_argument(
        "--ntcip",
        type=Path,
        metavar="FILE",
        help="drive a real NTCIP 1202 controller over SNMP (JSON: address, link_phases, ...); "
        "default: log the phases to the console",
    )
    p.add_argument("--validate", action="store_true", help="check the config and files, then exit")
    p.set_defaults(handler=_run_traffic)
