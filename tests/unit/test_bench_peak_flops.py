"""FLOPs of known layers against their closed form, and a share of peak that never passes 100 %."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.flops import count_flops
from benchmarks.peak import best_of, ort_peak, pinned_cpus, share_of_peak


def _export(net: object, shape: tuple[int, ...], path: Path) -> None:
    import torch

    assert isinstance(net, torch.nn.Module)
    net.eval()
    torch.onnx.export(
        net,
        (torch.zeros(*shape),),
        str(path),
        input_names=["input"],
        output_names=["out"],
        dynamic_axes={"input": {0: "batch"}, "out": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def test_conv2d_and_linear_from_torch_count_their_closed_form_flops(tmp_path: Path) -> None:
    from torch import nn

    # Conv 3->16, 5x5, stride 2, pad 2 on 40x40 -> 20x20; depthwise 3x3 (groups 16) keeps
    # 20x20; GAP; Linear 16->10 (exported as Gemm).
    net = nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
    _export(net, (1, 3, 40, 40), tmp_path / "net.onnx")
    conv = 2 * (16 * 20 * 20) * (3 * 5 * 5)  # 2 x outputs x (Cin/groups x kh x kw)
    depthwise = 2 * (16 * 20 * 20) * (1 * 3 * 3)
    linear = 2 * 10 * 16
    counted = count_flops(tmp_path / "net.onnx", batch=1)
    assert counted["unresolved"] == []
    assert counted["by_op"] == {"Conv": conv + depthwise, "Gemm": linear}
    assert counted["flops"] == conv + depthwise + linear
    assert count_flops(tmp_path / "net.onnx", batch=3)["flops"] == 3 * counted["flops"]


def test_share_of_peak_above_one_says_the_peak_is_unreliable_instead_of_a_number() -> None:
    assert share_of_peak(5e9, 10e9) == {"fraction_of_peak": 0.5}
    assert share_of_peak(10e9, 10e9) == {"fraction_of_peak": 1.0}
    over = share_of_peak(10.1e9, 10e9)
    assert "fraction_of_peak" not in over
    assert "10.10 GFLOP/s is above the measured peak 10.00" in over["peak_unreliable"]
    assert "fraction_of_peak" not in share_of_peak(1e9, 0.0)


def test_best_of_keeps_the_fastest_call() -> None:
    delays = iter([0.0, 0.0, 0.03, 0.001, 0.02])  # two warm-up calls, then three timed

    def call() -> None:
        import time

        time.sleep(next(delays))

    assert best_of(call, repeats=3, warmup=2) < 0.015
    calls = []
    best_of(lambda: calls.append(1), repeats=2, warmup=0, min_time_s=0.05)
    assert len(calls) > 2  # the time floor kept it trying past `repeats`
    with pytest.raises(ValueError, match="repeats is 0"):
        best_of(call, repeats=0)


def test_ort_peak_is_the_best_rate_over_several_sgemm_shapes() -> None:
    shapes = ((32, 32, 32), (64, 16, 8))
    peak = ort_peak(shapes, repeats=3, threads=1, providers=["CPUExecutionProvider"])
    by_shape = peak["by_shape_gflops_per_s"]
    assert set(by_shape) == {"32x32x32", "64x16x8"}
    assert peak["gflops_per_s"] == max(by_shape.values()) > 0
    assert peak["best_shape"] in by_shape


def test_rectangular_peak_graph_computes_the_product_it_is_timed_on() -> None:
    import onnxruntime as ort

    from benchmarks.peak import matmul_onnx

    session = ort.InferenceSession(matmul_onnx(8, 5, 3), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    a = rng.standard_normal((8, 5), dtype=np.float32)
    b = rng.standard_normal((5, 3), dtype=np.float32)
    (y,) = session.run(None, {"A": a, "B": b})
    np.testing.assert_allclose(y, a @ b, rtol=1e-5, atol=1e-5)


def test_pinned_cpus_restricts_and_then_restores_the_affinity() -> None:
    import os

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("this OS has no CPU affinity call; thread counts alone are pinned")
    before = os.sched_getaffinity(0)
    with pinned_cpus(1) as cpus:
        assert len(cpus) == 1
        assert os.sched_getaffinity(0) == set(cpus)
    assert os.sched_getaffinity(0) == before
