"""The host's measured peak FLOP/s per backend class: dense float32 matmuls (sgemm), timed.

"Share of peak" compares a model against what the same runtime reaches on the friendliest
workload on this host, so it says how much headroom the model's shapes leave. A peak that a
model beats is a wrong peak, so it is measured to be hard to beat:

- several sgemm shapes (square, and the tall-skinny ones convolutions lower to), because a
  runtime's best shape differs by host and library;
- the best of N timed calls per shape, never a median, because a busy host only ever makes a
  call slower, so the fastest call is the closest to what the hardware does;
- the same fixed thread count (and, where the OS allows, the same CPUs) as the model runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

Shape = tuple[int, int, int]  # (M, K, N): an [M, K] @ [K, N] product, 2·M·K·N FLOPs

# Square shapes for the BLAS sweet spot, and im2col-like ones (many pixels x a small channel
# count) that conv nets actually lower to; the peak is the best of them all.
SGEMM_SHAPES: tuple[Shape, ...] = (
    (512, 512, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (4096, 576, 64),
    (1024, 2304, 256),
)
QUICK_SHAPES: tuple[Shape, ...] = (
    (512, 512, 512),
    (768, 768, 768),
    (1024, 1024, 1024),
    (4096, 576, 64),
)


@contextmanager
def pinned_cpus(threads: int) -> Iterator[list[int]]:
    """Restrict this process to `threads` CPUs for the block (peak and model runs alike).

    Yields the CPU ids used; where the OS has no affinity call it yields the allowed set
    unchanged, and thread counts alone keep the runs comparable.
    """
    getter = getattr(os, "sched_getaffinity", None)
    setter = getattr(os, "sched_setaffinity", None)
    if getter is None or setter is None:
        yield list(range(os.cpu_count() or 1))
        return
    allowed = sorted(getter(0))
    chosen = allowed[: max(1, threads)]
    setter(0, chosen)
    try:
        yield chosen
    finally:
        setter(0, allowed)


def best_of(
    fn: Callable[[], object], repeats: int, warmup: int = 2, min_time_s: float = 0.0
) -> float:
    """The fastest timed call, in seconds: at least `repeats` calls, more until `min_time_s`.

    The time floor matters on a busy host: a few calls of a big shape can all land in a slow
    spell, so small shapes get hundreds of tries and big ones dozens.
    """
    if repeats < 1:
        raise ValueError(f"best_of: repeats is {repeats}; give at least 1")
    for _ in range(warmup):
        fn()
    best = float("inf")
    calls = 0
    began = time.perf_counter()
    while calls < repeats or time.perf_counter() - began < min_time_s:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        calls += 1
    return best


def _best(
    shapes: tuple[Shape, ...],
    make: Callable[[Shape], Callable[[], object]],
    repeats: int,
    min_time_s: float,
) -> dict[str, Any]:
    per_shape: dict[str, float] = {}
    best_rate, best_shape = 0.0, shapes[0]
    for shape in shapes:
        m, k, n = shape
        rate = 2 * m * k * n / best_of(make(shape), repeats, min_time_s=min_time_s)
        per_shape[f"{m}x{k}x{n}"] = rate / 1e9
        if rate > best_rate:
            best_rate, best_shape = rate, shape
    return {
        "flops_per_s": best_rate,
        "gflops_per_s": best_rate / 1e9,
        "best_shape": "x".join(map(str, best_shape)),
        "by_shape_gflops_per_s": per_shape,
        "method": (
            f"fastest of >= {repeats} calls and >= {min_time_s:g} s per sgemm shape "
            "(M x K x N); the best shape"
        ),
    }


def torch_peak(
    shapes: tuple[Shape, ...], repeats: int, threads: int, min_time_s: float = 0.0
) -> dict[str, Any]:
    """Peak of PyTorch eager on CPU (the reference backend's class)."""
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)

    def make(shape: Shape) -> Callable[[], object]:
        m, k, n = shape
        a = torch.randn(m, k, dtype=torch.float32, generator=gen)
        b = torch.randn(k, n, dtype=torch.float32, generator=gen)

        def call() -> object:
            with torch.inference_mode():
                return torch.matmul(a, b)

        return call

    return {
        "backend_class": "torch-cpu",
        "threads": threads,
        **_best(shapes, make, repeats, min_time_s),
    }


def matmul_onnx(m: int, k: int | None = None, n: int | None = None) -> bytes:
    """A one-node ONNX graph: Y = A @ B, A float32 [m, k], B [k, n] (square if k, n omitted)."""
    from onnx import TensorProto, helper

    k = m if k is None else k
    n = m if n is None else n
    a = helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])
    b = helper.make_tensor_value_info("B", TensorProto.FLOAT, [k, n])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["Y"])], "peak", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def ort_peak(
    shapes: tuple[Shape, ...],
    repeats: int,
    threads: int,
    providers: list[str],
    min_time_s: float = 0.0,
) -> dict[str, Any]:
    """Peak of ONNX Runtime with `providers` (inputs fed from host memory, as a gateway does)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL

    def make(shape: Shape) -> Callable[[], object]:
        m, k, n = shape
        session = ort.InferenceSession(matmul_onnx(m, k, n), opts, providers=providers)
        rng = np.random.default_rng(0)
        feed = {
            "A": rng.standard_normal((m, k), dtype=np.float32),
            "B": rng.standard_normal((k, n), dtype=np.float32),
        }
        return lambda: session.run(None, feed)

    return {
        "backend_class": "onnxruntime:" + ",".join(providers),
        "threads": threads,
        **_best(shapes, make, repeats, min_time_s),
    }


def share_of_peak(achieved_flops_per_s: float, peak_flops_per_s: float) -> dict[str, Any]:
    """`{"fraction_of_peak": f}` with f in (0, 1], or a note that the peak cannot be trusted.

    A model faster than the measured peak means the peak (or the FLOP count) is wrong; printing
    "103 % of peak" would pass that error on as a finding, so no share is given then.
    """
    if peak_flops_per_s <= 0:
        return {"peak_unreliable": "no peak was measured for this backend class"}
    fraction = achieved_flops_per_s / peak_flops_per_s
    if fraction > 1.0:
        return {
            "peak_unreliable": (
                f"achieved {achieved_flops_per_s / 1e9:.2f} GFLOP/s is above the measured peak "
                f"{peak_flops_per_s / 1e9:.2f} GFLOP/s, so the peak is unreliable (a busy host "
                "during the peak run?); rerun on a quieter host"
            )
        }
    return {"fraction_of_peak": fraction}
