"""`edgeward edge check FILE...`: the gateway's judging pipeline, offline, one JSON line a file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge.backends import BACKEND_TYPES
from shared.errors import ConfigError

DESCRIPTION = """\
Judge scan files offline with the same pipeline the clinic gateway runs (decode, validate,
quality gate, out-of-distribution guard, triage) and print one JSON line per file:

  {"file": ..., "verdict": ..., "reasons": [...], "codes": [...], "confidence": ...,
   "timings_ms": {...}, "flags": [...], "model_versions": {...}, ...}

Verdicts: retake, refer, no_immediate_concern, review, rejected. Nothing is sent anywhere.
Exit status: 0 when every file was judged (whatever the verdicts), 2 on a setup error.
"""


def _config(args: argparse.Namespace) -> Any:
    from shared.config import ClinicGatewayConfig, load_config

    if args.config is not None:
        config = load_config(args.config, ClinicGatewayConfig)
    else:
        config = ClinicGatewayConfig(site_id="offline-check")
    if args.registry is not None:
        config.registry_dir = args.registry
    if args.backend is not None:
        config.backend = args.backend
    return config


def run_check(args: argparse.Namespace) -> int:
    from edge.clinic.pipeline import ClinicPipeline

    config = _config(args)
    pipeline = ClinicPipeline(config)
    try:
        for path in args.files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read the file: {exc.strerror}") from exc
            outcome = pipeline.process(data, filename=path.name)
            line = {
                "file": str(path),
                "verdict": outcome.verdict.value,
                "reasons": outcome.reasons,
                "codes": outcome.codes,
                "confidence": round(outcome.confidence, 4),
                "timings_ms": outcome.timings_ms,
                "flags": outcome.flags,
                "gradable": outcome.gradable,
                "referable_probability": outcome.referable_probability,
                "laterality": outcome.laterality,
                "model_versions": outcome.model_versions,
                "backend": pipeline.backend_name,
            }
            if args.measures:
                line["measures"] = outcome.measures
            print(json.dumps(line, ensure_ascii=False), flush=True)
    finally:
        pipeline.close()
    sys.stdout.flush()
    return 0


def add_check_parser(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "check",
        help="judge scan files offline with the clinic pipeline (one JSON line per file)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="DICOM/JPEG/PNG/TIFF scans")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="clinic gateway YAML (limits, model names, backend); default: built-in defaults",
    )
    p.add_argument(
        "--registry",
        type=Path,
        default=None,
        metavar="DIR",
        help="model registry root (overrides registry_dir of the config; default ./registry)",
    )
    p.add_argument(
        "--backend",
        choices=BACKEND_TYPES,
        default=None,
        help="inference backend (overrides the config; auto picks the best this host has)",
    )
    p.add_argument(
        "--measures",
        action="store_true",
        help="also print the quality measures and out-of-distribution scores",
    )
    p.set_defaults(handler=run_check)
