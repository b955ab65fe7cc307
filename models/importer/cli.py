"""The `models import` sub-command (wired into `edgeward models` by models/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Bring a model trained elsewhere: the edge quality or triage net as ONNX, the cloud grader as
ONNX or TorchScript. Each model comes with a declaration (YAML; see
deploy/import/grader.yaml) of its task, file, preprocessing (input size, channel order,
mean/std and their units, fundus crop), input/output names, labels, thresholds, calibration
and, optionally, reference image/output pairs.

Checks, before anything is registered: ONNX Runtime loads it on CPU; the input shape matches
the declared size with a dynamic batch; the outputs fit the labels and are finite (a declared
probabilities output must sum to 1); the graph rewritten to edgeward's contract (input `input`
in RGB, outputs `logits`, `features`, `cam_activations`) computes what the original does; each
reference pair is reproduced through the shared decoder and the declared preprocessing; a
grader's logits are W·GAP(cam_activations) + b (fitted and verified on unseen inputs), which
is what its Grad-CAM needs. The sha256 of the file is recorded. A TorchScript grader is
converted to ONNX (parity-checked) and kept beside it. An edge net with a `features` output
gets the gateway's out-of-distribution reference, fitted on the --images photographs.

Then every model is registered as a candidate, evaluated with `edgeward models evaluate`'s
functions (the real gateway pipeline and the grader) on --images (default: a fresh sample of
the digital twin), with the candidates standing in for the champions, and checked against the
site's acceptance bar (--bar, YAML; see deploy/import/acceptance.yaml). With --promote they
become champions only if every bar is met; otherwise the failed bars are listed and the exit
status is 3, and `edgeward models promote` refuses them too. Import the quality, triage and
grader models in one command when the registry has no champions yet. With
EDGEWARD_MODEL_SIGNING_KEY set, promotion signs them like any other version.
"""


def _run(args: argparse.Namespace) -> int:
    from models.importer.run import print_summary, run_import

    result = run_import(
        args.declarations,
        args.registry,
        images=args.images,
        labels=args.labels,
        bar_path=args.bar,
        promote=args.promote,
        out=args.out,
        json_path=args.json,
        say=lambda line: print(line, flush=True),
    )
    print_summary(result)
    return 3 if result.failures else 0


def add_import_parser(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "import",
        help="bring your own model: check, register as candidate, evaluate, promote if it passes",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "example:\n"
            "  edgeward models import quality.yaml triage.yaml grader.yaml \\\n"
            "      --images clinic-photos/ --bar deploy/import/acceptance.yaml --promote"
        ),
    )
    p.add_argument(
        "declarations", nargs="+", type=Path, metavar="DECLARATION", help="declaration YAML files"
    )
    p.add_argument("--registry", type=Path, default=Path("registry"), help="registry root")
    p.add_argument(
        "--images",
        nargs="+",
        type=Path,
        default=None,
        metavar="PATH",
        help="labelled photographs (files or folders) to evaluate on; default: a twin sample",
    )
    p.add_argument(
        "--labels", type=Path, default=None, metavar="CSV", help="labels CSV (as for evaluate)"
    )
    p.add_argument("--bar", type=Path, default=None, metavar="YAML", help="site acceptance bar")
    p.add_argument(
        "--promote", action="store_true", help="make the candidates champions if the bar is met"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/import"),
        metavar="DIR",
        help="folder for the evaluation report (default out/import)",
    )
    p.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="write the evaluation JSON"
    )
    p.set_defaults(handler=_run)
