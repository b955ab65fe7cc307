"""`bench models`: every registered model on every backend this host has, across batch sizes.

PyTorch eager is the reference; each edge backend (ONNX Runtime CPU, CUDA EP, TensorRT EP,
native TensorRT) runs the same verified model through `edge.backends`, as a gateway would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.flops import count_flops
from benchmarks.peak import (
    QUICK_SHAPES,
    SGEMM_SHAPES,
    Shape,
    ort_peak,
    pinned_cpus,
    share_of_peak,
    torch_peak,
)
from benchmarks.results import BenchRun
from benchmarks.runner import Budget, measure
from shared.errors import EdgewardError
from shared.registry import Registry, VerifiedModel

log = logging.getLogger(__name__)
EAGER = "pytorch-eager"
INT8 = "onnx-cpu-int8"  # the registry's int8 ONNX artifact on ORT CPU
KNOWN_BACKENDS = (EAGER, "onnx-cpu", INT8, "onnx-cuda", "onnx-tensorrt", "tensorrt")
GPU_KINDS = ("onnx-cuda", "onnx-tensorrt", "tensorrt")


@dataclass(frozen=True)
class ModelsPlan:
    registry: Path
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    budget: Budget = field(default_factory=Budget)
    peak_shapes: tuple[Shape, ...] = SGEMM_SHAPES
    peak_repeats: int = 7
    peak_min_time_s: float = 2.0  # per shape: enough tries that one lands in a quiet moment
    threads: int = 2
    only: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()  # empty: every available one

    @classmethod
    def quick(cls, registry: Path, **kw: Any) -> ModelsPlan:
        quick_budget = Budget(warmup_iters=2, warmup_s=0.2, min_iters=5, max_iters=200, time_s=0.4)
        return cls(
            registry,
            batch_sizes=(1, 4),
            budget=quick_budget,
            peak_shapes=QUICK_SHAPES,
            peak_repeats=4,
            peak_min_time_s=0.4,
            **kw,
        )


Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


def _torch_runner(model: VerifiedModel, threads: int) -> tuple[Runner, Callable[[], None]]:
    """The registered PyTorch weights, run eagerly; outputs named like the ONNX graph's."""
    import onnx
    import torch

    from models.loading import load_torch_module

    torch.set_num_threads(threads)
    net = load_torch_module(model)
    names = [
        o.name for o in onnx.load(str(model.path("onnx")), load_external_data=False).graph.output
    ]
    forward = getattr(net, "forward_with_features", None) or net

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = forward(torch.from_numpy(batch))
        tensors = out if isinstance(out, tuple) else (out,)
        return {n: t.numpy() for n, t in zip(names, tensors, strict=False)}

    return run, lambda: None


def _bound(runner: Runner, batch: np.ndarray) -> Callable[[], object]:
    return lambda: runner(batch)


def _edge_runner(
    kind: str, model: VerifiedModel, threads: int
) -> tuple[Runner, Callable[[], None], list[str]]:
    from edge.backends import create_backend

    options: dict[str, Any] = {"threads": threads} if kind.startswith("onnx") else {}
    backend = create_backend(kind, model, **options)
    return backend.run, backend.close, backend.providers


def _int8_variant(model: VerifiedModel) -> VerifiedModel | None:
    """The same version with its int8 ONNX file standing in as `onnx` (checksums verified)."""
    art = model.manifest.artifacts.get("onnx_int8")
    if art is None:
        return None
    artifacts = {**model.manifest.artifacts, "onnx": art}
    return VerifiedModel(
        model.manifest.model_copy(update={"artifacts": artifacts}), model.directory
    )


def _backend_kinds(run: BenchRun, wanted: tuple[str, ...]) -> list[str]:
    """Edge backend kinds to measure; the rest are recorded with the reason they cannot run."""
    try:
        from edge.backends import AUTO_ORDER, unavailable_reason
    except ImportError as exc:
        run.skip("edge backends", f"edge.backends cannot be imported ({exc})")
        return []
    kinds = []
    for kind in reversed(AUTO_ORDER):  # cheapest (onnx-cpu) first
        int8_needs_it = kind == "onnx-cpu" and INT8 in wanted
        if wanted and kind not in wanted and not int8_needs_it:
            continue
        reason = unavailable_reason(kind)
        if reason is None:
            kinds.append(kind)
        else:
            run.skip(f"backend {kind}", reason)
    return kinds


def _peaks(
    run: BenchRun, plan: ModelsPlan, kinds: list[str], with_eager: bool
) -> dict[str, dict[str, Any]]:
    """Measured dense-matmul peak per backend class (CPU torch, CPU ORT, GPU via CUDA EP)."""
    peaks: dict[str, dict[str, Any]] = {}
    with tqdm(total=int(with_eager) + len(kinds), desc="peak FLOP/s", unit="class") as bar:
        if with_eager:
            try:
                peaks[EAGER] = torch_peak(
                    plan.peak_shapes, plan.peak_repeats, plan.threads, plan.peak_min_time_s
                )
            except ImportError as exc:
                run.skip("torch peak", str(exc))
            bar.update()
        for kind in kinds:
            if kind == "onnx-cpu":
                peaks[kind] = ort_peak(
                    plan.peak_shapes,
                    plan.peak_repeats,
                    plan.threads,
                    ["CPUExecutionProvider"],
                    plan.peak_min_time_s,
                )
            elif kind in GPU_KINDS:
                # cuBLAS through the CUDA EP: the GPU's practical dense float32 ceiling.
                gpu = peaks.get("gpu") or ort_peak(
                    plan.peak_shapes,
                    plan.peak_repeats,
                    plan.threads,
                    ["CUDAExecutionProvider"],
                    plan.peak_min_time_s,
                )
                peaks["gpu"] = peaks[kind] = gpu
            bar.update()
    return peaks


def run_models(run: BenchRun, plan: ModelsPlan) -> None:
    unknown = sorted(set(plan.backends) - set(KNOWN_BACKENDS))
    if unknown:
        raise EdgewardError(
            f"bench models: unknown backend {', '.join(unknown)}; "
            f"choose from {', '.join(KNOWN_BACKENDS)}"
        )
    registry = Registry(plan.registry)
    names = [n for n in registry.names() if not plan.only or n in plan.only]
    if not names:
        raise EdgewardError(
            f"bench models: no models in registry {plan.registry}"
            + (f" matching {', '.join(plan.only)}" if plan.only else "")
            + "; build them with `edgeward models build` or pass --registry DIR"
        )
    missing = sorted(set(plan.only) - set(registry.names()))
    for name in missing:
        run.skip(f"model {name}", f"not in registry {plan.registry}")
    kinds = _backend_kinds(run, plan.backends)
    # The peak and every model run on the same CPUs with the same thread count, so a share of
    # peak compares like with like.
    with pinned_cpus(plan.threads) as cpus:
        _measure_all(run, plan=plan, registry=registry, names=names, kinds=kinds, cpus=cpus)
    _headline(run)


def _measure_all(
    run: BenchRun,
    *,
    plan: ModelsPlan,
    registry: Registry,
    names: list[str],
    kinds: list[str],
    cpus: list[int],
) -> None:
    with_eager = not plan.backends or EAGER in plan.backends
    peaks = _peaks(run, plan, kinds, with_eager)
    for peak in peaks.values():
        peak["cpus"] = cpus
    run.sections["peak_flops"] = peaks

    models: dict[str, VerifiedModel] = {}
    for name in names:
        try:
            models[name] = registry.load_serving(name)
        except EdgewardError as exc:
            run.skip(f"model {name}", str(exc))
    jobs = [(n, EAGER) for n in models if with_eager]
    for n, m in models.items():
        jobs += [(n, k) for k in kinds if not plan.backends or k in plan.backends]
        wants_int8 = not plan.backends or INT8 in plan.backends
        if wants_int8 and "onnx-cpu" in kinds and _int8_variant(m) is not None:
            jobs.append((n, INT8))
    total = len(jobs) * len(plan.batch_sizes)
    with tqdm(total=total, desc="bench models", unit="run") as bar:
        reference: dict[tuple[str, int], dict[str, Any]] = {}
        for name, kind in jobs:
            _bench_one(
                run, plan, model=models[name], kind=kind, peaks=peaks, reference=reference, bar=bar
            )


def _bench_one(
    run: BenchRun,
    plan: ModelsPlan,
    *,
    model: VerifiedModel,
    kind: str,
    peaks: dict[str, dict[str, Any]],
    reference: dict[tuple[str, int], dict[str, Any]],
    bar: Any,
) -> None:
    name = model.manifest.name
    shape = model.manifest.input_shape
    if any(not isinstance(d, int) for d in shape[1:]):
        run.skip(f"{name} on {kind}", f"input shape {shape} has symbolic dims besides batch")
        bar.update(len(plan.batch_sizes))
        return
    flops = count_flops(model.path("onnx"), batch=1)
    try:
        if kind == EAGER:
            runner, close = _torch_runner(model, plan.threads)
            providers = ["torch-cpu"]
        elif kind == INT8:
            int8 = _int8_variant(model)
            assert int8 is not None
            runner, close, providers = _edge_runner("onnx-cpu", int8, plan.threads)
        else:
            runner, close, providers = _edge_runner(kind, model, plan.threads)
    except (EdgewardError, ImportError) as exc:
        run.skip(f"{name} on {kind}", str(exc))
        bar.update(len(plan.batch_sizes))
        return
    peak_class = "onnx-cpu" if kind == INT8 else kind
    peak = peaks.get(peak_class, {}).get("flops_per_s")
    rng = np.random.default_rng(0)
    try:
        for batch_size in plan.batch_sizes:
            bar.set_postfix_str(f"{name} {kind} b{batch_size}")
            batch = rng.standard_normal((batch_size, *[int(d) for d in shape[1:]]), np.float32)
            outputs = runner(batch)
            record = measure(
                _bound(runner, batch), plan.budget, items_per_call=batch_size, unit="images/s"
            )
            p50_s = record["latency_ms"]["p50"] / 1e3
            achieved = flops["flops"] * batch_size / p50_s
            metrics: dict[str, Any] = {
                "flops_per_image": flops["flops"],
                "gflops": flops["flops"] * batch_size / 1e9,
                "achieved_gflops_per_s": achieved / 1e9,
                "providers": providers,
            }
            if peak:
                metrics.update(share_of_peak(achieved, peak))
            ref = reference.get((name, batch_size))
            if kind == EAGER:
                reference[(name, batch_size)] = {"outputs": outputs, "p50": p50_s}
            elif ref is not None:
                metrics["speedup_vs_pytorch"] = ref["p50"] / p50_s
                common = [k for k in ref["outputs"] if k in outputs]
                if common:
                    metrics["max_abs_diff_vs_pytorch"] = max(
                        float(np.max(np.abs(outputs[k] - ref["outputs"][k]))) for k in common
                    )
            run.add(
                f"{name}/{kind}/b{batch_size}",
                record,
                params={
                    "model": model.manifest.model_id,
                    "backend": kind,
                    "batch": batch_size,
                    "input_shape": [batch_size, *shape[1:]],
                    "threads": plan.threads,
                },
                metrics=metrics,
                curve=("batch size", f"{name} {kind}", batch_size),
            )
            bar.update()
    finally:
        close()


def _headline(run: BenchRun) -> None:
    for r in run.results:
        m, p = r["metrics"], r["params"]
        if p["backend"] == "onnx-cpu" and "speedup_vs_pytorch" in m:
            key = f"{r['name'].split('/')[0]} ORT CPU vs PyTorch eager (b{p['batch']})"
            run.headline[key] = f"{m['speedup_vs_pytorch']:.2f}x faster"
    shares = [r for r in run.results if "fraction_of_peak" in r["metrics"]]
    if shares:
        best = max(shares, key=lambda r: r["metrics"]["fraction_of_peak"])
        run.headline["best share of peak"] = (
            f"{100 * best['metrics']['fraction_of_peak']:.1f}% ({best['name']})"
        )
    unreliable = [r["name"] for r in run.results if "peak_unreliable" in r["metrics"]]
    if unreliable:
        run.headline["peak unreliable"] = (
            f"{len(unreliable)} run(s) beat the measured peak, no share given: "
            + ", ".join(unreliable[:3])
        )
