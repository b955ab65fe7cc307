"""Clinic pipeline latency per stage (file bytes -> verdict), and the quality-check calibration.

    python -m benchmarks.edge_pipeline latency --registry DIR [--size 2048] [--n 200]
        [--format jpeg|png|dicom|dicom-jpeg]
    python -m benchmarks.edge_pipeline calibrate [--size 1024] [--n 8]

`latency` judges generated scans (JPEG by default) with ONNX Runtime on the CPU and prints
p50/p99 per stage (decode, validate, quality, ood, triage, total), wall and process CPU time: on a
shared, loaded host CPU time is the steadier measure of what a scan costs. `calibrate` prints,
per generator defect class, the range of every classical quality measure and what the gate
decided: the thresholds in edge/clinic/quality.py were read off this table.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

# The upload copy's encode is off the verdict path (edge/clinic/upload.py): not a stage here.
STAGES = ("validate", "decode", "quality", "ood", "triage", "total")


def generated_jpegs(size: int, count: int, quality: int = 92) -> list[bytes]:
    """`count` gradable synthetic fundus scans of `size` px as camera-like JPEGs."""
    from sim.fundus.generator import generate_sample

    scans = []
    for i in range(count):
        image = generate_sample(31, i, size=size, defect_rate=0.0).image_bgr
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        scans.append(buf.tobytes())
    return scans


def stage_latencies(
    registry: Path,
    *,
    size: int = 2048,
    n: int = 200,
    backend: str = "onnx-cpu",
    distinct: int = 8,
    warmup: int = 5,
    fmt: str = "jpeg",
) -> dict[str, Any]:
    """p50/p99 (ms) per stage and in total for `n` scans of `size` px, bytes to verdict."""
    from benchmarks.suites.edge import CONTENT_TYPES, encode_scans
    from edge.clinic.pipeline import ClinicPipeline
    from shared.config.clinic import ClinicGatewayConfig

    scans = generated_jpegs(size, distinct) if fmt == "jpeg" else encode_scans(fmt, size, distinct)
    name, kind = f"scan.{fmt.split('-', maxsplit=1)[0]}", CONTENT_TYPES[fmt]
    with tempfile.TemporaryDirectory(prefix="edgeward-edge-bench-") as tmp:
        config = ClinicGatewayConfig(
            site_id="bench", registry_dir=registry, data_dir=Path(tmp), backend=backend
        )
        pipeline = ClinicPipeline(config)
        try:
            for i in range(warmup):
                pipeline.process(scans[i % distinct], filename=name, content_type=kind)
            per_stage: dict[str, list[float]] = collections.defaultdict(list)
            verdicts: collections.Counter[str] = collections.Counter()
            wall: list[float] = []
            cpu: list[float] = []  # process CPU time: what the scan costs when the host is busy
            for i in tqdm(range(n), desc=f"judging {size}px {fmt} scans", unit="scan"):
                t0, c0 = time.perf_counter(), time.process_time()
                out = pipeline.process(scans[i % distinct], filename=name, content_type=kind)
                wall.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                verdicts[out.verdict.value] += 1
                for stage in STAGES:
                    per_stage[stage].append(out.timings_ms.get(stage, 0.0))
            backend_name = pipeline.backend_name
        finally:
            pipeline.close()
    summary = {
        stage: {
            "p50_ms": round(float(np.percentile(v, 50)), 2),
            "p99_ms": round(float(np.percentile(v, 99)), 2),
        }
        for stage, v in per_stage.items()
    }
    for name, values in (("wall", wall), ("cpu", cpu)):
        summary[name] = {
            "p50_ms": round(float(np.percentile(values, 50)), 2),
            "p99_ms": round(float(np.percentile(values, 99)), 2),
        }
    return {
        "size": size,
        "format": fmt,
        "scans": n,
        "backend": backend_name,
        "verdicts": dict(verdicts),
        "stages": summary,
    }


def calibration_table(size: int = 1024, n: int = 8) -> list[dict[str, Any]]:
    """Per generator class (clean, each defect usable/reject, non-fundus): measure ranges."""
    from edge.clinic.quality import assess
    from sim.fundus.defects import QUALITY_RULES, USABLE_MAX_FRACTION
    from sim.fundus.generator import DEFECTS, generate_sample
    from sim.fundus.nonfundus import nonfundus_images

    rng = np.random.default_rng(5)
    groups: dict[str, list[Any]] = collections.defaultdict(list)
    for i in range(2 * n):
        groups["clean"].append(assess(generate_sample(7, i, size=size, defect_rate=0.0).image_bgr))
    for d in tqdm(DEFECTS, desc="defects", unit="class"):
        ra = QUALITY_RULES[d].reject_at
        for i in range(n):
            usable = float(rng.uniform(0.08, USABLE_MAX_FRACTION * ra))
            reject = float(rng.uniform(ra, 1.0))
            for tag, sev, seed in (("usable", usable, 8), ("reject", reject, 9)):
                sample = generate_sample(seed, 1000 + i, size=size, defects={d: sev})
                groups[f"{d}:{tag}"].append(assess(sample.image_bgr))
    for kind, image in nonfundus_images(0, 512).items():
        groups[f"nonfundus:{kind}"].append(assess(image))
    table = []
    for tag, reports in groups.items():
        keys = sorted({k for r in reports for k in r.measures})
        ranges = {
            k: [round(min(vals), 4), round(max(vals), 4)]
            for k in keys
            if (vals := [r.measures[k] for r in reports if k in r.measures])
        }
        decided = collections.Counter(
            ("retake" if r.rejects else "warn" if r.warnings else "pass")
            + (":" + ",".join(sorted({f.code for f in r.findings})) if r.findings else "")
            for r in reports
        )
        table.append({"class": tag, "n": len(reports), "ranges": ranges, "gate": dict(decided)})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency", help="per-stage p50/p99 from file bytes to verdict")
    lat.add_argument("--registry", type=Path, required=True, help="model registry root")
    lat.add_argument("--size", type=int, default=2048, help="scan side in pixels")
    lat.add_argument("--n", type=int, default=200, help="scans to judge")
    lat.add_argument("--backend", default="onnx-cpu", help="inference backend")
    formats = ("jpeg", "png", "dicom", "dicom-jpeg")
    lat.add_argument("--format", default="jpeg", choices=formats, help="scan format")
    cal = sub.add_parser("calibrate", help="quality measures per generator defect class")
    cal.add_argument("--size", type=int, default=1024, help="scan side in pixels")
    cal.add_argument("--n", type=int, default=8, help="samples per class")
    args = parser.parse_args()
    if args.what == "latency":
        result = stage_latencies(
            args.registry, size=args.size, n=args.n, backend=args.backend, fmt=args.format
        )
        print(json.dumps(result, indent=2))
    else:
        for row in calibration_table(args.size, args.n):
            print(json.dumps(row))


if __name__ == "__main__":
    main()
