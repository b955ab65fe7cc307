"""`bench edge`: the clinic gateway pipeline per stage and end to end; the traffic gateway path.

Scans come from the retinal twin at sizes real fundus cameras produce, encoded the way clinics
send them (JPEG, PNG, DICOM). Stage times are the pipeline's own `timings_ms`, so they add up to
what an operator sees in the gateway's records.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.results import BenchRun
from benchmarks.runner import Budget, measure
from benchmarks.stats import summarize_ms, thin
from benchmarks.suites.traffic_gateway import run_traffic_gateway
from shared.errors import EdgewardError

CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "dicom": "application/dicom",  # uncompressed (explicit VR little endian)
    "dicom-jpeg": "application/dicom",  # JPEG Baseline inside: decoded by DCT scaling
}


@dataclass(frozen=True)
class EdgePlan:
    registry: Path
    scans: tuple[tuple[str, int], ...] = (
        ("jpeg", 1536),
        ("jpeg", 2048),
        ("png", 2048),
        ("dicom", 2048),
        ("dicom-jpeg", 2048),
    )
    budget: Budget = field(default_factory=lambda: Budget(time_s=8.0))
    backend: str = "onnx-cpu"
    distinct_scans: int = 4

    @classmethod
    def quick(cls, registry: Path) -> EdgePlan:
        # At least 20 scans per format: with fewer, "p99" is just the slowest scan.
        quick = Budget(warmup_iters=2, warmup_s=0.2, min_iters=20, max_iters=100, time_s=1.5)
        # 2048 px in every format: the size the edge targets are set at.
        scans = (("jpeg", 2048), ("png", 2048), ("dicom", 2048), ("dicom-jpeg", 2048))
        return cls(registry, scans=scans, budget=quick, distinct_scans=2)


def encode_scans(fmt: str, size: int, count: int) -> list[bytes]:
    """`count` gradable synthetic scans of `size` px encoded as `fmt`."""
    from sim.fundus.generator import generate_sample

    out = []
    for i in range(count):
        sample = generate_sample(seed=7, index=i, size=size, defect_rate=0.0)
        if fmt.startswith("dicom"):
            from sim.fundus.dicom import to_dicom_bytes

            syntax = "jpeg-baseline" if fmt == "dicom-jpeg" else "explicit"
            out.append(to_dicom_bytes(sample, syntax=syntax))
            continue
        ext, opts = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 92]) if fmt == "jpeg" else (".png", [])
        ok, buf = cv2.imencode(ext, sample.image_bgr, opts)
        if not ok:
            raise EdgewardError(f"bench edge: cv2 could not encode a {size}px {fmt} scan")
        out.append(buf.tobytes())
    return out


def run_edge(run: BenchRun, plan: EdgePlan) -> None:
    _clinic(run, plan)
    run_traffic_gateway(run, plan.registry, plan.budget, plan.backend)


def _clinic(run: BenchRun, plan: EdgePlan) -> None:
    try:
        from edge.clinic.pipeline import ClinicPipeline
        from shared.config.clinic import ClinicGatewayConfig
    except ImportError as exc:
        run.skip("clinic pipeline", f"edge.clinic.pipeline cannot be imported ({exc})")
        return
    with tempfile.TemporaryDirectory(prefix="edgeward-bench-edge-") as tmp:
        config = ClinicGatewayConfig(
            site_id="bench", data_dir=Path(tmp), registry_dir=plan.registry, backend="auto"
        )
        try:
            pipeline = ClinicPipeline(config, backend=plan.backend, registry_dir=plan.registry)
        except (EdgewardError, ValueError) as exc:
            run.skip("clinic pipeline", str(exc))
            return
        run.sections["clinic_pipeline"] = {
            "backend": pipeline.backend_name,
            "models": pipeline.model_versions,
        }
        try:
            for fmt, size in tqdm(plan.scans, desc="clinic scans", unit="kind"):
                _one_kind(run, plan, pipeline, fmt, size)
        finally:
            pipeline.close()
    _headlines(run)


def _headlines(run: BenchRun) -> None:
    """p50/p99 per format, and the issue's edge targets read within this one run.

    Targets (issue 17): DICOM 2048 px p99 <= 1.5x JPEG 2048 px p99; JPEG p99 < 50 ms on 2 cores.
    A ratio, not milliseconds, is what to read on a shared, loaded host.
    """
    p99: dict[tuple[str, int], float] = {}
    for r in run.results:
        p = r["params"]
        if p.get("stage") != "end_to_end":
            continue
        kind = f"{p['format']} {p['size']}px"
        run.headline[f"clinic scan→verdict p50 ms ({kind})"] = round(r["latency_ms"]["p50"], 2)
        run.headline[f"clinic scan→verdict p99 ms ({kind})"] = round(r["latency_ms"]["p99"], 2)
        p99[(p["format"], p["size"])] = r["latency_ms"]["p99"]
    for size in sorted({s for _, s in p99}):
        jpeg = p99.get(("jpeg", size))
        if not jpeg:
            continue
        for fmt in ("dicom", "dicom-jpeg", "png"):
            if (fmt, size) in p99:
                target = "; target <= 1.5" if fmt.startswith("dicom") else ""
                run.headline[f"clinic {fmt}/jpeg p99 ratio ({size}px{target})"] = round(
                    p99[(fmt, size)] / jpeg, 2
                )
        run.headline[f"clinic jpeg p99 ms ({size}px; target < 50)"] = round(jpeg, 2)


def _one_kind(run: BenchRun, plan: EdgePlan, pipeline: Any, fmt: str, size: int) -> None:
    scans = encode_scans(fmt, size, plan.distinct_scans)
    timings: list[dict[str, float]] = []
    verdicts: dict[str, int] = {}
    state = {"i": 0}

    def judge() -> None:
        state["i"] += 1
        data = scans[state["i"] % len(scans)]
        name, kind = f"scan.{fmt.split('-', maxsplit=1)[0]}", CONTENT_TYPES[fmt]
        outcome = pipeline.process(data, filename=name, content_type=kind)
        timings.append(dict(outcome.timings_ms))
        verdicts[str(outcome.verdict)] = verdicts.get(str(outcome.verdict), 0) + 1

    record = measure(judge, plan.budget, items_per_call=1, unit="scans/s")
    measured = timings[record["warmup"]["iterations"] :]
    params = {"format": fmt, "size": size, "bytes": int(np.mean([len(s) for s in scans]))}
    base = f"clinic/{fmt}-{size}"
    run.add(
        f"{base}/end_to_end",
        record,
        params={**params, "stage": "end_to_end"},
        metrics={"verdicts": verdicts},
    )
    stages = [k for k in measured[0] if k != "total"] if measured else []
    for stage in stages:
        samples_ms = [t[stage] for t in measured if stage in t]
        if not samples_ms:
            continue
        lat = summarize_ms([v / 1e3 for v in samples_ms])
        stage_record = {
            **{k: record[k] for k in ("warmup", "memory", "stop_reason", "stable")},
            "latency_ms": lat,
            "iterations": lat["n"],
            "throughput": {
                "value": 1e3 / lat["mean"] if lat["mean"] > 0 else 0.0,
                "unit": "scans/s",
            },
            "samples_ms": thin(samples_ms),
        }
        run.add(f"{base}/{stage}", stage_record, params={**params, "stage": stage})
