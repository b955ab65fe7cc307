"""`python -m sim.flywheel`: log a shift scenario's scans through a registry model."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.errors import EdgewardError
from shared.monitoring.prediction_log import PredictionLog
from sim.flywheel.scenarios import SCENARIOS, feed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sim.flywheel",
        description="Feed scenario scans through a real model into a prediction log. Scenarios: "
        + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()),
    )
    p.add_argument("--log", type=Path, required=True, help="prediction log (SQLite, created)")
    p.add_argument("--registry", type=Path, default=Path("registry"), help="registry root")
    p.add_argument("--model", default="fundus-triage", help="registry model name")
    p.add_argument("--scenario", action="append", required=True, choices=sorted(SCENARIOS),
                   help="scenario to feed; repeat to feed several in order")  # fmt: skip
    p.add_argument("--n", type=int, default=200, help="scans per scenario")
    p.add_argument("--seed", type=int, default=1, help="first seed (one per scenario)")
    p.add_argument("--label-fraction", type=float, default=1.0, help="share reviewed")
    args = p.parse_args(argv)
    log = PredictionLog(args.log, os.environ.get("EDGEWARD_SITE_KEY", "sim-key").encode())
    try:
        for i, name in enumerate(args.scenario):
            n = feed(log, args.registry, args.model, name, n=args.n, seed=args.seed + i,
                     site=f"clinic-{name}", label_fraction=args.label_fraction)  # fmt: skip
            print(f"{name}: logged {n} predictions of {args.model}")
    except EdgewardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
