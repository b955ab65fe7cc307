"""Compare controllers on one scenario over several seeds: mean and spread, not one lucky run.

    python -m sim.traffic.compare --scenario grid:4x4:rush --seeds 1 2 3 --minutes 30 \\
        --controllers fixed actuated delay_based --out runs/compare
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.traffic.harness import RunConfig, run

METRICS = ("mean_delay_s", "mean_waiting_s", "throughput", "stops", "safety_violations")


def compare(
    scenario: str,
    *,
    controllers: Sequence[str],
    seeds: Sequence[int],
    minutes: float,
    out: Path,
    faults: Sequence[str] = (),
) -> dict[str, Any]:
    """Run every controller on every seed; return per-controller mean, sd, min and max."""
    rows: dict[str, list[dict[str, Any]]] = {c: [] for c in controllers}
    for seed in seeds:
        for c in controllers:
            cfg = RunConfig(
                scenario,
                c,
                minutes,
                out / f"{c}-seed{seed}",
                seed=seed,
                faults=list(faults),
                progress=False,
            )
            rows[c].append(run(cfg))
    table: dict[str, Any] = {
        "scenario": scenario,
        "minutes": minutes,
        "seeds": list(seeds),
        "faults": list(faults),
    }
    for c, runs in rows.items():
        entry: dict[str, Any] = {}
        for m in METRICS:
            vals = [float(r[m]) for r in runs]
            entry[m] = {
                "mean": round(statistics.fmean(vals), 2),
                "sd": round(statistics.stdev(vals), 2) if len(vals) > 1 else 0.0,
                "min": min(vals),
                "max": max(vals),
            }
        entry["sim_speed"] = round(statistics.fmean(float(r["sim_speed"]) for r in runs), 1)
        table[c] = entry
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(table, indent=2) + "\n")
    return table


def format_table(table: dict[str, Any], controllers: Sequence[str]) -> str:
    lines = [f"{'controller':<12} {'delay s':>16} {'waiting s':>16} {'throughput':>14} sim-s/s"]
    for c in controllers:
        e = table[c]
        d, w, t = e["mean_delay_s"], e["mean_waiting_s"], e["throughput"]
        lines.append(
            f"{c:<12} {d['mean']:>9.1f} ± {d['sd']:<5.1f} {w['mean']:>9.1f} ± {w['sd']:<5.1f} "
            f"{t['mean']:>8.0f} ± {t['sd']:<4.0f} {e['sim_speed']:>7.0f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="compare signal controllers over seeds")
    p.add_argument("--scenario", default="grid:4x4:rush")
    p.add_argument("--controllers", nargs="+", default=["fixed", "actuated", "delay_based"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--fault", action="append", default=[])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    table = compare(
        args.scenario,
        controllers=args.controllers,
        seeds=args.seeds,
        minutes=args.minutes,
        out=args.out,
        faults=args.fault,
    )
    print(format_table(table, args.controllers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
