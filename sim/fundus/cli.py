"""`edgeward sim fundus`: write synthetic fundus photographs with labels."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from shared.cli_args import number
from shared.errors import EdgewardError
from sim.fundus.dataset import FORMATS
from sim.fundus.families import FAMILY_NAMES


def _run(args: argparse.Namespace) -> int:
    from sim.fundus.dataset import write_dataset

    omit = [t.strip() for t in args.omit_tags.split(",") if t.strip()] if args.omit_tags else []
    if omit and args.format != "dicom":
        raise EdgewardError(
            f"--omit-tags {args.omit_tags} needs --format dicom (got --format {args.format})"
        )
    start = time.perf_counter()
    labels = write_dataset(
        Path(args.out),
        n=args.n,
        seed=args.seed,
        fmt=args.format,
        size=args.size,
        defect_rate=args.defect_rate,
        dicom_syntax=args.dicom_syntax,
        omit=omit,
        overwrite=args.overwrite,
        workers=args.workers,
        family=args.family,
    )
    took = time.perf_counter() - start
    print(f"wrote {args.n} scans and {labels} in {took:.1f} s ({args.n / took:.1f} images/s)")
    return 0


def add_fundus_parser(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "fundus",
        help="write synthetic fundus photographs with labels",
        description=(
            "Write synthetic retinal (fundus) photographs and DIR/labels.csv: ICDR grade 0-4 and "
            "referable (grade >= 2), quality good/usable/reject with the acquisition defects "
            "applied, camera model, pigmentation and laterality. The same --seed always gives "
            "the same files."
        ),
        epilog=(
            "examples:\n"
            "  edgeward sim fundus --n 200 --out data/fundus\n"
            "  edgeward sim fundus --n 20 --out data/dcm --format dicom "
            "--dicom-syntax jpeg-baseline --omit-tags ImageLaterality,PatientID"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--n",
        type=number(int, low=1, high=10_000_000),
        required=True,
        help="number of scans to write",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output directory (images/ and labels.csv go here)",
    )
    p.add_argument(
        "--seed",
        type=number(int, low=0, high=2**63 - 1),
        default=0,
        help="random seed; the same seed gives the same data (default 0)",
    )
    p.add_argument(
        "--format", choices=sorted(FORMATS), default="png", help="image file format (default png)"
    )
    p.add_argument(
        "--defect-rate",
        type=number(float, low=0.0, high=1.0),
        default=0.2,
        metavar="R",
        help="fraction of scans with >= 1 acquisition defect (default 0.2)",
    )
    p.add_argument(
        "--size",
        type=number(int, low=64, high=4096),
        default=1024,
        metavar="PX",
        help="image side in pixels (default 1024)",
    )
    p.add_argument(
        "--omit-tags",
        default="",
        metavar="TAG,...",
        help="DICOM keywords to leave out, as some devices do (dicom format only)",
    )
    p.add_argument(
        "--dicom-syntax",
        choices=["explicit", "jpeg-baseline"],
        default="explicit",
        help="DICOM transfer syntax: uncompressed explicit VR little endian, or JPEG "
        "baseline (YBR_FULL_422) (default explicit)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing labels.csv in DIR instead of refusing",
    )
    p.add_argument(
        "--workers",
        type=number(int, low=1, high=64),
        default=1,
        help="processes making scans in parallel; same files either way (default 1)",
    )
    p.add_argument(
        "--family",
        choices=[*FAMILY_NAMES, "all"],
        default=None,
        help="photograph each render as this real camera family would (frame, field shape, "
        "exposure, reflex, veil, colour, noise, JPEG, text); 'all' takes turns (png/jpeg only)",
    )
    p.set_defaults(handler=_run)
