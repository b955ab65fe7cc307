"""`edgeward demo`: run the whole system end to end and write a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli_args import positive_float, positive_int

DESCRIPTION = """\
Run both cases end to end on this machine, with a failure thrown in:

  - builds the models if the registry has none (first run only),
  - starts mosquitto (authentication on), the Ray Serve cloud tier and one gateway per clinic,
  - feeds each clinic a stream of synthetic scans (DICOM and JPEG; healthy, referable, ~18%
    with acquisition defects, a few that are not fundus images at all) and prints verdicts,
  - runs a SUMO grid at rush hour with one gateway per junction, coordinated by the cloud,
    beside a fixed-time run of the same traffic,
  - stops the cloud tier partway through and brings it back,
  - writes one HTML report (verdicts, Grad-CAM overlays, retakes with reasons, the review queue,
    delay over time with the outage shaded, latency per stage, the upload backlog and its drain).

Run at a terminal, the demo then keeps the cloud, the review desk, the gateways and Orthanc up:
it prints the desk's URL and logins and Orthanc's explorer URL; decide a case in the desk, then
find the reviewer's SR and PDF in that study in Orthanc. Ctrl-C stops everything the demo
started. Without a terminal (CI, a pipe) or with --no-hold it stops after the report, having
decided one case through the desk's form itself and checked that its SR reached Orthanc.
Exit status 1 if any of the report's checks failed."""


def _run(args: argparse.Namespace) -> int:
    from sim.demo.run import Demo, DemoSettings

    settings = DemoSettings(
        out=args.out,
        registry=args.registry,
        clinics=args.clinics,
        scans_per_clinic=args.scans,
        scan_interval_s=args.scan_interval,
        grid=args.grid,
        traffic_minutes=args.traffic_minutes,
        outage_at_s=args.outage_at,
        outage_s=args.outage_for,
        seed=args.seed,
        quick_models=args.quick_models,
        traffic=not args.no_traffic,
    )
    from sim.demo.hold import should_hold

    demo = Demo(settings, hold=should_hold(args.no_hold))
    path = demo.run()
    print(f"\nreport: {path}")
    facts = (path.parent / "facts.json").read_text()
    import json

    checks = json.loads(facts)["checks"]
    for c in checks:
        print(f"  {'pass' if c['ok'] else 'FAIL'}  {c['name']}: {c['detail']}")
    return 0 if all(c["ok"] for c in checks) else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole system end to end and write a report",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--registry", type=Path, default=Path("registry"), help="model registry")
    p.add_argument("--clinics", type=positive_int, default=3, help="clinic gateways (3)")
    p.add_argument("--scans", type=positive_int, default=20, help="scans per clinic (20)")
    p.add_argument(
        "--scan-interval", type=positive_float, default=8.0, help="seconds between scans (8)"
    )
    p.add_argument("--grid", default="4x4", help="traffic grid size RxC (4x4)")
    p.add_argument(
        "--traffic-minutes", type=positive_float, default=8.0, help="simulated minutes (8)"
    )
    p.add_argument(
        "--outage-at", type=float, default=60.0, help="seconds into the run the cloud stops (60)"
    )
    p.add_argument(
        "--outage-for", type=positive_float, default=90.0, help="seconds the cloud stays down"
    )
    p.add_argument("--seed", type=int, default=1, help="seed of scans and traffic")
    p.add_argument("--quick-models", action="store_true", help="build tiny models if none exist")
    p.add_argument("--no-traffic", action="store_true", help="clinics only")
    p.add_argument(
        "--no-hold",
        action="store_true",
        help="stop everything after the report, even at a terminal (the default there is to "
        "keep the desk, gateways and Orthanc up until Ctrl-C)",
    )
    p.set_defaults(handler=_run)
