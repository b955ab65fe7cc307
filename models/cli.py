"""`edgeward models`: build, list, show, promote models and build TensorRT engines."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from models.evaluate import add_evaluate_parser
from models.importer.cli import add_import_parser
from shared.errors import EdgewardError
from shared.registry import STAGES, Registry


def _registry(args: argparse.Namespace) -> Registry:
    return Registry(args.registry)


def _build(args: argparse.Namespace) -> int:
    # Idle OpenMP threads must sleep, not spin: on a shared 2-core box spinning threads of
    # parallel builds starve each other (measured: 16 s vs 0.8 s per batch under load).
    # libgomp reads this when torch loads, so it is set before the first torch import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from models.build import build_all

    started = time.monotonic()
    built = build_all(
        _registry(args),
        quick=args.quick,
        seed=args.seed,
        only=args.only,
        if_missing=args.if_missing,
        cache_dir=args.cache_dir,
    )
    print(f"built {len(built)} model(s) in {time.monotonic() - started:.0f} s into {args.registry}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from models.build import key_metrics

    reg = _registry(args)
    rows = [
        (m.name, m.version, m.stage, m.task, key_metrics(m), m.created_at)
        for name in reg.names()
        for m in reg.versions(name)
    ]
    if not rows:
        print(f"registry {reg.root} has no models; build them with `edgeward models build`")
        return 0
    header = ("NAME", "VERSION", "STAGE", "TASK", "KEY METRICS (held-out)", "CREATED")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _show(args: argparse.Namespace) -> int:
    reg = _registry(args)
    if args.version is None:
        manifest = reg.champion(args.name)
        if manifest is None:
            versions = reg.versions(args.name)
            if not versions:
                known = ", ".join(reg.names()) or "none"
                raise EdgewardError(f"no model {args.name!r} in {reg.root} (models: {known})")
            manifest = versions[-1]
    else:
        manifest = reg.manifest(args.name, args.version)
    data = manifest.model_dump(mode="json")
    if not args.full:
        # the OOD precision matrix and drift histograms are long; --full prints them
        for key in ("ood", "reference"):
            if key in data["extra"]:
                data["extra"][key] = f"<{key} statistics: use --full to print>"
    print(json.dumps(data, indent=2, sort_keys=True))
    problems = reg.problems(manifest)
    print("verification: " + ("OK" if not problems else "; ".join(problems)))
    return 0 if not problems else 1


def _promote(args: argparse.Namespace) -> int:
    from models.importer.acceptance import promotion_refusal

    reg = _registry(args)
    refusal = promotion_refusal(reg.manifest(args.name, args.version))
    if args.stage == "champion" and refusal is not None:
        raise EdgewardError(refusal)
    manifest = reg.set_stage(args.name, args.version, args.stage, reason=args.reason)
    print(f"{manifest.model_id} is now {manifest.stage}")
    return 0


def _trt(args: argparse.Namespace) -> int:
    from models.trt import build_engine_for

    manifest = build_engine_for(
        _registry(args),
        args.name,
        args.version,
        fp16=args.fp16,
        max_batch=args.max_batch,
        workspace_mib=args.workspace_mib,
    )
    art = manifest.artifacts["trt_fp16" if args.fp16 else "trt_fp32"]
    print(f"{manifest.model_id}: engine {art.path} ({art.bytes} bytes) {art.meta}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "models",
        help="build, list, show and promote models; build TensorRT engines",
        description=(
            "The model factory: render synthetic fundus scans, train the edge quality and triage "
            "nets and the cloud grader, calibrate, export to ONNX with a parity check, register "
            "in a directory registry and promote to champion."
        ),
    )
    p.set_defaults(handler=lambda _a: p.print_help())
    cmds = p.add_subparsers(dest="models_command", metavar="ACTION")

    def with_registry(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--registry",
            type=Path,
            default=Path("registry"),
            help="registry root directory (default: ./registry)",
        )

    b = cmds.add_parser(
        "build",
        help="generate data, train, calibrate, evaluate, export and register models",
        description=(
            "Render synthetic fundus scans (cached under --cache-dir), train each model (one "
            "process per core), fit a calibration (temperature or per-class vector scaling, "
            "whichever has the lower cross-validated ECE) and thresholds on the validation "
            "split, evaluate on the "
            "held-out split (overall and per camera, pigmentation, laterality), export to ONNX "
            "(parity-checked against PyTorch on 64 images), quantise the edge nets to int8, "
            "register and promote to champion. Full build: about 10-15 min on 2 cores."
        ),
    )
    with_registry(b)
    b.add_argument("--quick", action="store_true", help="tiny data and few epochs (tests, <2 min)")
    b.add_argument(
        "--if-missing",
        action="store_true",
        help=(
            "skip models whose champion was built from today's recipe; a champion of an older "
            "recipe is built again, one the site imported or promoted is kept"
        ),
    )
    b.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="build only these (fundus-quality fundus-triage fundus-grader traffic-counter)",
    )
    b.add_argument("--seed", type=int, default=0, help="seed of data and training (default 0)")
    b.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(".cache/datasets"),
        help="where rendered training data is cached (default: ./.cache/datasets)",
    )
    b.set_defaults(handler=_build)

    ls = cmds.add_parser("list", help="table of every model version in the registry")
    with_registry(ls)
    ls.set_defaults(handler=_list)

    sh = cmds.add_parser(
        "show",
        help="print a manifest and verify its files",
        description="Print one manifest (default: the champion) and verify its checksums.",
    )
    with_registry(sh)
    sh.add_argument("name")
    sh.add_argument("version", nargs="?", help="version number (default: champion, else newest)")
    sh.add_argument("--full", action="store_true", help="include OOD and drift statistics")
    sh.set_defaults(handler=_show)

    pr = cmds.add_parser(
        "promote",
        help="change a version's stage (one champion per name)",
        description=(
            "Move a version to a stage. Promoting to champion archives the previous champion and "
            "is refused when the manifest is incomplete or a file fails its checksum."
        ),
    )
    with_registry(pr)
    pr.add_argument("name")
    pr.add_argument("version")
    pr.add_argument("--stage", choices=STAGES, required=True)
    pr.add_argument("--reason", default="promoted with `edgeward models promote`")
    pr.set_defaults(handler=_promote)

    t = cmds.add_parser(
        "trt",
        help="build a TensorRT engine from a registered ONNX model (needs an NVIDIA GPU)",
        description=(
            "Build a serialized TensorRT engine (explicit batch, dynamic batch profile) from the "
            "model's ONNX file with the TensorRT Python API and register it beside the model "
            "as artifact trt_fp16 (or trt_fp32), with the TensorRT version and GPU name."
        ),
    )
    with_registry(t)
    t.add_argument("name")
    t.add_argument("--version", help="version (default: champion)")
    t.add_argument("--fp16", action="store_true", help="allow fp16 kernels (artifact trt_fp16)")
    t.add_argument("--max-batch", type=int, default=16, help="largest batch of the profile")
    t.add_argument("--workspace-mib", type=int, default=1024, help="builder workspace limit")
    t.set_defaults(handler=_trt)

    add_evaluate_parser(cmds)
    add_import_parser(cmds)
