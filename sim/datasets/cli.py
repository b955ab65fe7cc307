"""`edgeward sim datasets`: render the model factory's training data ahead of a build."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DESCRIPTION = """\
Render every dataset the model build reads into OUT/<kind>-<id>/ as .npy files plus
manifest.json (parameters, generator version, a hash of the generator's code, each file's
sha256): fundus scans at each model input size with their labels and non-fundus images for the
OOD check; the gate calibration set (gateway-scale twin scans with the classical gate's verdict,
on which the quality net's threshold is chosen); traffic-counter frames with their counts. A
folder already rendered by the same code and parameters is kept. `edgeward models build` renders
what is missing itself (through the renderers registered under the `edgeward.datasets` entry
points); this command does it ahead of time, or for a build on a machine without sim/ (copy the
folders there)."""


def _run(args: argparse.Namespace) -> int:
    # models.build knows the plan (sizes, seeds, views); sim only draws what it asks for.
    from models.build import dataset_requests
    from models.datasets import Renderer, ensure
    from sim.datasets import counter, fundus, gate

    renderers: dict[str, Renderer] = {
        "fundus": fundus.RENDERER,
        "fundus-gate": gate.RENDERER,
        "traffic-counter": counter.RENDERER,
    }
    for request in dataset_requests(args.quick, args.seed):
        started = time.monotonic()
        renderer = renderers[request.kind]
        dataset = ensure(request, args.out, renderer=renderer, workers=args.workers)
        took = time.monotonic() - started
        how = f"rendered in {took:.0f} s" if dataset.rendered_now else "cached"
        print(f"{request.kind} {dict(request.params)}: {dataset.directory} ({how})", flush=True)
    return 0


def add_datasets_parser(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "datasets",
        help="render the training data `edgeward models build` reads",
        description=DESCRIPTION,
        epilog="example:\n  edgeward sim datasets --out .cache/datasets --quick",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(".cache/datasets"),
        help="where to write them (default: ./.cache/datasets, where `models build` reads)",
    )
    p.add_argument("--quick", action="store_true", help="the quick build's small datasets")
    p.add_argument("--seed", type=int, default=0, help="the build's seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="render processes (default: 2)")
    p.set_defaults(handler=_run)
