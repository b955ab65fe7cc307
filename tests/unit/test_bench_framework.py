"""The bench framework: statistics, adaptive stopping, FLOP counting, memory, compare, report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.compare import compare, render
from benchmarks.flops import count_flops
from benchmarks.results import BenchRun, load_results
from benchmarks.runner import Budget, measure
from benchmarks.stats import is_stable, summarize_ms
from shared.errors import EdgewardError

TINY = Budget(warmup_iters=2, warmup_s=0.05, min_iters=5, max_iters=400, time_s=0.5)


def test_summary_percentiles_are_ordered_and_in_ms() -> None:
    rng = np.random.default_rng(1)
    summary = summarize_ms(list(rng.exponential(0.01, size=1000)))
    assert summary["min"] <= summary["p50"] <= summary["p95"] <= summary["p99"] <= summary["max"]
    assert summary["n"] == 1000
    assert 5 < summary["p50"] < 10  # exponential(10 ms) median is 6.9 ms


def test_stability_needs_every_tracked_percentile_to_settle() -> None:
    assert is_stable((10.0, 20.0), (10.2, 20.3), rel_tol=0.03)
    assert not is_stable((10.0, 20.0), (10.2, 25.0), rel_tol=0.03)


def test_warmup_calls_are_reported_apart_from_the_samples() -> None:
    calls = []

    def first_call_slow() -> None:
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.0005)

    record = measure(first_call_slow, TINY)
    assert record["warmup"]["first_ms"] >= 50
    assert record["latency_ms"]["max"] < 50  # the slow first call is not among the samples
    assert record["warmup"]["iterations"] + record["iterations"] == len(calls)


def test_steady_function_stops_as_stable_before_the_budget() -> None:
    record = measure(lambda: time.sleep(0.001), Budget(min_iters=10, time_s=30, rel_tol=0.2))
    assert record["stop_reason"] == "stable"
    assert record["stable"] is True
    assert record["iterations"] >= 10


def test_noisy_function_stops_at_the_time_budget() -> None:
    rng = np.random.default_rng(0)
    record = measure(
        lambda: time.sleep(float(rng.choice([0.0001, 0.004]))),
        Budget(warmup_iters=1, min_iters=5, time_s=0.3, rel_tol=0.0),
    )
    assert record["stop_reason"] == "time_budget"
    assert not record["stable"]


def test_throughput_counts_items_per_call() -> None:
    record = measure(lambda: time.sleep(0.002), TINY, items_per_call=8, unit="images/s")
    per_call = record["iterations"] / sum(record["samples_ms"]) * 1e3
    assert record["throughput"]["value"] == pytest.approx(8 * per_call, rel=0.05)
    assert record["throughput"]["unit"] == "images/s"


def test_peak_rss_sees_a_large_allocation() -> None:
    # In a fresh interpreter: after the suite's earlier tests this process's allocator can hold
    # freed, still-resident memory and serve the block from it without the RSS growing (a fresh
    # clone's run measured 0.07 MB here).
    code = (
        "import numpy as np\n"
        "from benchmarks.memory import PeakRss\n"
        "with PeakRss() as mem:\n"
        "    block = np.ones(40_000_000 // 8)  # 40 MB, touched\n"
        "    del block\n"
        "print(mem.as_dict()['peak_over_baseline_mb'])\n"
    )
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert float(run.stdout.strip()) >= 30


def _conv_model(path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper, save

    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    fc = numpy_helper.from_array(np.zeros((8, 4), np.float32), "fc")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("GlobalAveragePool", ["c"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"]),
            helper.make_node("MatMul", ["f", "fc"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[w, fc],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_flops_of_conv_and_matmul_match_the_hand_count(tmp_path: Path) -> None:
    _conv_model(tmp_path / "m.onnx")
    conv = 2 * 8 * 16 * 16 * 3 * 3 * 3  # Cout x Hout x Wout x Cin x k x k, two FLOPs per MAC
    matmul = 2 * 8 * 4
    one = count_flops(tmp_path / "m.onnx", batch=1)
    assert one["by_op"] == {"Conv": conv, "MatMul": matmul}
    assert one["unresolved"] == []
    assert count_flops(tmp_path / "m.onnx", batch=4)["flops"] == 4 * (conv + matmul)


def test_unreadable_onnx_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgewardError, match=r"cannot read ONNX model .*bad\.onnx"):
        count_flops(bad)


def _result(name: str, p50: float, throughput: float) -> dict:
    return {
        "name": name,
        "latency_ms": {"p50": p50, "p95": p50 * 1.2, "p99": p50 * 1.5},
        "throughput": {"value": throughput, "unit": "images/s"},
    }


def test_compare_flags_only_changes_beyond_the_threshold() -> None:
    old = {"results": [_result("a", 10.0, 100.0), _result("b", 10.0, 100.0), _result("c", 1, 1)]}
    new = {"results": [_result("a", 10.5, 95.0), _result("b", 13.0, 70.0), _result("d", 1, 1)]}
    changes, unmatched = compare(old, new)
    text, regressions = render(changes, unmatched, threshold=0.10)
    # b: p50, p95, p99 30% slower and throughput 30% lower; a: within 10%
    assert regressions == 4
    assert all(line.startswith("b ") for line in text.splitlines() if "REGRESSION" in line)
    assert unmatched == ["c", "d"]
    ratios = {(c.name, c.metric): c.ratio for c in changes}
    assert ratios[("a", "latency_ms.p50")] == pytest.approx(1.05)


def test_faster_run_is_not_a_regression() -> None:
    old = {"results": [_result("a", 10.0, 100.0)]}
    new = {"results": [_result("a", 5.0, 200.0)]}
    _, regressions = render(*compare(old, new), threshold=0.10)
    assert regressions == 0


def test_compare_checks_the_same_run_ratios_in_the_headline_each_way_round() -> None:
    old = {
        "results": [],
        "headline": {
            "Serve vs in-process ceiling (throughput, c=16)": "0.95x",
            "Serve overhead per request, ms (c=1 p50, vs the in-process ceiling)": 5.0,
            "bridge / plain subscriber messages/s, draining a backlog (same run)": 0.54,
            "lost messages (all runs, must be 0)": 0,
            "Grad-CAM cost vs plain forward (batch 8, in-process)": "1.25x",
            "a figure with no direction": 3.0,
        },
    }
    new = {
        "results": [],
        "headline": {
            "Serve vs in-process ceiling (throughput, c=16)": "0.60x",  # worse: lower
            "Serve overhead per request, ms (c=1 p50, vs the in-process ceiling)": 9.0,  # worse
            "bridge / plain subscriber messages/s, draining a backlog (same run)": 0.80,  # better
            "lost messages (all runs, must be 0)": 2,  # worse: any loss
            "Grad-CAM cost vs plain forward (batch 8, in-process)": "1.20x",  # better
            "a figure with no direction": 30.0,
        },
    }
    changes, _ = compare(old, new)
    text, regressions = render(changes, [], threshold=0.10)
    flagged = {line.split("  ")[0].strip() for line in text.splitlines() if "REGRESSION" in line}
    assert regressions == 3
    assert {c.name for c in changes} == set(new["headline"]) - {"a figure with no direction"}
    assert any("ceiling" in f for f in flagged) and any("overhead" in f for f in flagged)
    assert any("lost messages" in f for f in flagged)


def _run_with_results(out: Path) -> BenchRun:
    run = BenchRun("unit", out, quick=True, config={"k": 1})
    for batch in (1, 4):
        record = measure(lambda: time.sleep(0.001), TINY, items_per_call=batch)
        run.add(
            f"m/b{batch}",
            record,
            params={"batch": batch},
            metrics={"fraction_of_peak": 0.1 * batch, "gflops": 0.5},
            curve=("batch size", "m", batch),
        )
    run.skip("backend onnx-cuda", "no GPU here")
    return run


def test_run_writes_json_report_and_charts(tmp_path: Path) -> None:
    path = _run_with_results(tmp_path / "out").finish()
    data = load_results(path)
    assert {"host", "results", "unavailable", "headline", "config", "warnings"} <= set(data)
    for key in ("cpu_model", "cpu_cores", "memory_gb", "load_average", "gpus", "packages", "git"):
        assert key in data["host"]
    assert data["unavailable"] == [{"what": "backend onnx-cuda", "reason": "no GPU here"}]
    html = (path.parent / "report.html").read_text()
    pngs = sorted(p.name for p in path.parent.glob("*.png"))
    assert pngs == ["curve_batch_size.png", "latency_1.png", "share_of_peak.png"]
    for png in pngs:
        assert f"src='{png}'" in html
        assert (path.parent / png).read_bytes()[:4] == b"\x89PNG"
    assert "no GPU here" in html


def test_duplicate_result_name_is_refused(tmp_path: Path) -> None:
    run = _run_with_results(tmp_path)
    with pytest.raises(ValueError, match="added twice"):
        run.add("m/b1", measure(lambda: None, TINY))


def test_compare_with_a_file_that_is_not_a_bench_result_is_a_clear_error(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(EdgewardError, match=r"not a results\.json written by `edgeward bench`"):
        load_results(other)
    with pytest.raises(EdgewardError, match="file not found"):
        load_results(tmp_path / "missing.json")


def test_peak_matmul_model_computes_the_product_it_is_timed_on() -> None:
    import onnxruntime as ort

    from benchmarks.peak import matmul_onnx

    session = ort.InferenceSession(matmul_onnx(16), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    a = rng.standard_normal((16, 16), dtype=np.float32)
    b = rng.standard_normal((16, 16), dtype=np.float32)
    (y,) = session.run(None, {"A": a, "B": b})
    np.testing.assert_allclose(y, a @ b, rtol=1e-5, atol=1e-5)


def test_a_stage_of_microseconds_is_never_a_regression() -> None:
    old = {"results": [_result("tiny", 0.07, 100.0), _result("real", 5.0, 100.0)]}
    new = {"results": [_result("tiny", 0.14, 100.0), _result("real", 10.0, 100.0)]}
    text, regressions = render(*compare(old, new), threshold=0.10)
    assert regressions == 3  # real's p50, p95, p99; tiny's doubling is jitter
    assert all(line.startswith("real ") for line in text.splitlines() if "REGRESSION" in line)


def test_the_tail_of_a_short_run_is_not_compared_its_median_is() -> None:
    old, new = _result("short", 10.0, 100.0), _result("short", 10.0, 100.0)
    new["latency_ms"]["p99"] = 30.0  # one slow request among 31
    for r in (old, new):
        r["latency_ms"]["n"] = 31
    changes, _ = compare({"results": [old]}, {"results": [new]})
    assert {c.metric for c in changes} == {"latency_ms.p50", "throughput.value"}
