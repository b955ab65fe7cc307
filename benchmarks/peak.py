"""The host's measured peak FLOP/s per backend class: a dense float32 matmul, timed.

"Share of peak" compares a model against what the same runtime reaches on the friendliest
possible workload on this host, so it says how much headroom the model's shapes leave.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.runner import Budget, measure


def _best(
    sizes: tuple[int, ...], make: Callable[[int], Callable[[], object]], budget: Budget
) -> dict[str, Any]:
    best: dict[str, Any] = {"flops_per_s": 0.0}
    per_size = {}
    for n in sizes:
        record = measure(make(n), budget)
        rate = 2 * n**3 / (record["latency_ms"]["p50"] / 1e3)
        per_size[str(n)] = rate
        if rate > best["flops_per_s"]:
            best = {"flops_per_s": rate, "matrix_size": n}
    best["gflops_per_s"] = best["flops_per_s"] / 1e9
    best["by_size_gflops_per_s"] = {k: v / 1e9 for k, v in per_size.items()}
    return best


def torch_peak(sizes: tuple[int, ...], budget: Budget, threads: int) -> dict[str, Any]:
    """Peak of PyTorch eager on CPU (the reference backend's class)."""
    import torch

    torch.set_num_threads(threads)

    def make(n: int) -> Callable[[], object]:
        a = torch.randn(n, n, dtype=torch.float32)
        b = torch.randn(n, n, dtype=torch.float32)

        def call() -> object:
            with torch.inference_mode():
                return torch.matmul(a, b)

        return call

    return {"backend_class": "torch-cpu", "threads": threads, **_best(sizes, make, budget)}


def matmul_onnx(n: int) -> bytes:
    """A one-node ONNX graph: Y = A @ B with A, B float32 [n, n]."""
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("B", TensorProto.FLOAT, [n, n])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, n])
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["Y"])], "peak", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def ort_peak(
    sizes: tuple[int, ...], budget: Budget, threads: int, providers: list[str]
) -> dict[str, Any]:
    """Peak of ONNX Runtime with `providers` (inputs fed from host memory, as a gateway does)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads

    def make(n: int) -> Callable[[], object]:
        session = ort.InferenceSession(matmul_onnx(n), opts, providers=providers)
        rng = np.random.default_rng(0)
        feed = {
            "A": rng.standard_normal((n, n), dtype=np.float32),
            "B": rng.standard_normal((n, n), dtype=np.float32),
        }
        return lambda: session.run(None, feed)

    return {
        "backend_class": "onnxruntime:" + ",".join(providers),
        "threads": threads,
        **_best(sizes, make, budget),
    }
