"""`edgeward sim traffic`: run a SUMO scenario under a controller, or describe its junctions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shared.cli_args import positive_float
from shared.config.loader import load_config
from shared.config.traffic import SignalSafety
from shared.errors import EdgewardError

_EPILOG = """\
scenarios:
  grid:RxC[:PROFILE]       generated R x C grid (netgenerate, 2 lanes + left-turn lane)
  arterial:1xN[:PROFILE]   generated N-junction arterial with 1-lane side streets
  PATH.sumocfg             your own configuration (network + routes)
  PATH.net.xml             your own network; --routes FILE..., else generated demand
  PROFILE: steady (default), rush (peak mid-run), asymmetric (one direction dominates)

faults (times in simulated seconds):
  cloud_down@300-900   broker_down@300-600   gateway_kill:J1@200-400
  camera:J2:north:frozen@100-300 (frozen|black|blur|obstructed|dropped)
  uplink_delay:2.5@0-600

examples:
  edgeward sim traffic --scenario grid:4x4:rush --controller fixed --minutes 30 --out runs/fixed
  edgeward sim traffic --scenario sim/traffic/networks/irregular.sumocfg --describe
"""


def _run(args: argparse.Namespace) -> int:
    from sim.traffic.harness import RunConfig, run

    if args.describe:
        return _describe(args)
    if args.out is None:
        raise EdgewardError(
            "edgeward sim traffic: --out DIR is required to run a scenario; add --out runs/NAME"
        )
    options: dict[str, Any] = {}
    if args.controller == "edgeward":  # only the plugin controller takes options
        options["counter"] = args.counter
        if args.registry:
            options["registry"] = args.registry
        if args.broker:
            options["broker"] = args.broker
            options["mqtt_user"] = args.mqtt_user
            if args.mqtt_certs:
                options["mqtt_certs"] = args.mqtt_certs
        if args.external_coordinator:
            if not args.broker:
                raise EdgewardError("--external-coordinator needs --broker HOST:PORT")
            options["external_coordinator"] = True
    if args.write_topology:
        return _write_topology(args)
    safety = SignalSafety()
    if args.safety:
        safety = load_config(args.safety, SignalSafety)
    summary = run(
        RunConfig(
            safety=safety,
            controller_options=options,
            scenario=args.scenario,
            controller=args.controller,
            minutes=args.minutes,
            out_dir=Path(args.out),
            seed=args.seed,
            faults=list(args.fault),
            routes=[Path(r) for r in args.routes],
            profile=args.profile,
            progress=not args.no_progress,
            camera_condition=args.camera_condition,
            realtime=args.realtime,
            baseline_envelope=args.envelope,
            baseline_programs=args.baseline_programs,
        )
    )
    keys = ["mean_delay_s", "mean_waiting_s", "throughput", "stops", "safety_violations"]
    keys += ["mode_changes", "sim_speed"]
    print(json.dumps({k: summary[k] for k in keys}))
    for jid, why in summary["not_driven"].items():
        print(f"not driven: {jid}: {why}")
    for jid, phases in summary["phases_left_out"].items():
        print(f"driven without a phase: {jid}: {'; '.join(phases)}")
    if summary["not_driven"]:
        print(
            f"{summary['safety_violations_own_programs']} of the violations are the network's "
            "own programs at the lights not driven"
        )
    print(f"wrote {Path(args.out) / 'summary.json'} and {Path(args.out) / 'delay.png'}")
    return 0


def _write_topology(args: argparse.Namespace) -> int:
    """Save the network as the cloud coordinator's topology file (SUMO starts, nothing runs)."""
    from sim.traffic.harness import RunConfig, run
    from sim.traffic.topology_export import TopologyWriter, TopologyWritten

    path = Path(args.write_topology)
    cfg = RunConfig(
        scenario=args.scenario,
        controller="fixed",
        minutes=args.minutes,
        out_dir=Path(args.out),
        seed=args.seed,
        routes=[Path(r) for r in args.routes],
        profile=args.profile,
        progress=False,
    )
    try:
        run(cfg, controller=TopologyWriter(path))
    except TopologyWritten:
        print(f"wrote {path}")
        return 0
    raise EdgewardError(f"could not write the topology to {path}")


def _describe(args: argparse.Namespace) -> int:
    """Print the junctions, approaches and phases derived from the network."""
    import tempfile

    from edge.traffic.program import left_out_phases
    from edge.traffic.signal_port import PhaseDef
    from shared.traffic.programs import never_green
    from sim.traffic.network import (
        additional_programs,
        junctions_of,
        phases_of,
        program_ids,
        read_net,
    )
    from sim.traffic.safety import conflicts_of
    from sim.traffic.scenario import build_scenario, parse_scenario

    spec = parse_scenario(args.scenario, [Path(r) for r in args.routes], args.profile)
    with tempfile.TemporaryDirectory() as tmp:
        scenario = build_scenario(spec, Path(tmp), seed=args.seed, minutes=args.minutes)
        net = read_net(scenario.net_file)
        loaded = additional_programs(scenario.additional_files)
        for j in junctions_of(net):
            extra = loaded.get(j.junction_id, {})
            ids = program_ids(net, j.junction_id, extra)
            if not ids:
                print(f"{j.junction_id}: no program in the network (a rail signal): SUMO's own")
                continue
            phases = phases_of(net, j.junction_id, extra)
            listed = str(ids) if len(ids) <= 4 else f"{len(ids)} programs"
            which = f" (program {ids[-1]!r} of {listed})" if len(ids) > 1 else ""
            watched = "" if j.approaches else " (no road approach: its own program, made safe)"
            print(
                f"{j.junction_id}: {len(j.approaches)} approaches, {len(phases)} phases{which}"
                f"{watched}"
            )
            unserved = never_green([state for state, *_ in phases])
            if unserved:
                print(f"  program {ids[-1]!r} never gives green to links {unserved}")
            program = [PhaseDef.from_state(state, duration) for state, duration, *_ in phases]
            for why in left_out_phases(program, conflicts_of(j.layout)).values():
                print(f"  {why}: edgeward never shows it")
            for a in j.approaches:
                print(f"  {a.approach_id:<24} edge {a.edge_id}  links {list(a.link_indices)}")
    return 0


def add_traffic_parser(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "traffic",
        help="run a SUMO traffic scenario under a controller",
        description=(
            "Run a SUMO scenario under a signal controller and write DIR/summary.json "
            "(delay, waiting, throughput, stops, safety violations, mode changes), "
            "DIR/delay.png (delay over time, fault windows shaded) and the logs."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", required=True, help="generated spec or a SUMO file (below)")
    p.add_argument(
        "--controller",
        default="fixed",
        choices=["fixed", "actuated", "delay_based", "edgeward"],
        help="fixed = the network's static programs; actuated / delay_based = SUMO's own "
        "logics (on programs netconvert rebuilds; see --baseline-programs); "
        "edgeward = gateways + coordinator",
    )
    p.add_argument(
        "--minutes", type=positive_float, default=10.0, help="simulated minutes (default 10)"
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault (repeatable; syntax below)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of demand and SUMO (default 1)")
    p.add_argument("--out", metavar="DIR", help="output directory")
    p.add_argument(
        "--routes",
        action="append",
        default=[],
        metavar="FILE",
        help="route file for a .net.xml scenario (repeatable)",
    )
    p.add_argument(
        "--profile",
        choices=["steady", "rush", "asymmetric"],
        help="demand profile for generated demand on a .net.xml without routes",
    )
    p.add_argument(
        "--camera-condition",
        default="day",
        choices=["day", "night", "rain", "glare"],
        help="lighting and weather the cameras see (default day)",
    )
    p.add_argument(
        "--safety",
        metavar="FILE",
        help="YAML with the SignalSafety limits the run is checked against "
        "(min_green_s, max_green_s, yellow_s, all_red_s, pedestrian_min_s, ...; "
        "default: the gateway defaults)",
    )
    p.add_argument(
        "--registry",
        metavar="DIR",
        help="edgeward only: model registry holding traffic-counter "
        "(default $EDGEWARD_REGISTRY or ./registry)",
    )
    p.add_argument(
        "--counter",
        choices=["model", "truth"],
        default="model",
        help="edgeward only: count with the ONNX model (default) or SUMO's truth (debugging)",
    )
    p.add_argument(
        "--envelope",
        action="store_true",
        help="fixed/actuated/delay_based only: run the network's programs under edgeward's "
        "change intervals and green limits (the fair comparison; see sim/traffic/envelope.py)",
    )
    p.add_argument(
        "--baseline-programs",
        choices=["rebuilt", "own"],
        default="rebuilt",
        help="actuated/delay_based only: on programs netconvert rebuilds from the network "
        "(default) or on the network's own phases made actuated, the phase design edgeward "
        "drives (a plan with protected turn stages keeps them)",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace the simulation with the wall clock (gateways against a real cloud tier)",
    )
    p.add_argument(
        "--broker",
        metavar="HOST:PORT",
        help="edgeward only: use this mosquitto instead of starting one "
        "(password from $EDGEWARD_MQTT_PASSWORD)",
    )
    p.add_argument("--mqtt-user", default=None, help="edgeward only: broker user name")
    p.add_argument(
        "--mqtt-certs",
        metavar="DIR",
        default=None,
        help="edgeward only: TLS to --broker with DIR/ca.crt, each junction showing its own "
        "DIR/<junction id>.crt and .key (`edgeward certs device ID`)",
    )
    p.add_argument(
        "--external-coordinator",
        action="store_true",
        help="edgeward only: plans come from the cloud tier's coordinator, not an in-process one",
    )
    p.add_argument(
        "--write-topology",
        metavar="PATH",
        help="write the network topology the cloud coordinator reads, then exit",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--describe",
        action="store_true",
        help="print the junctions, approaches and phases derived from the network, then exit",
    )
    p.set_defaults(handler=_run)
