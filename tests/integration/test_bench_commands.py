"""`edgeward bench SUITE --quick` as CI runs it: real models, real ORT/torch, real mosquitto.

These check that the JSON holds every field with sane values, never how fast anything is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from benchmarks.suites.mqtt_subscribers import Subscriber
from shared.broker import MosquittoBroker
from shared.cli import main
from shared.config.base import MqttSettings
from shared.errors import EdgewardError
from tests.waiting import wait_for

RESULT_KEYS = {
    "suite",
    "name",
    "params",
    "latency_ms",
    "throughput",
    "warmup",
    "iterations",
    "stop_reason",
    "stable",
    "memory",
    "samples_ms",
    "metrics",
}


def _bench(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(["bench", *args, "--quick", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"results: {out / 'results.json'}" in printed
    assert (out / "report.html").exists()
    return dict(json.loads((out / "results.json").read_text()))


def _check_sane(data: dict[str, Any], suite: str) -> None:
    assert data["tool"] == "edgeward bench"
    assert data["suite"] == suite
    assert data["quick"] is True
    host = data["host"]
    assert host["cpu_cores"] >= 1
    assert host["memory_gb"] > 0
    assert host["cpu_model"]
    assert len(host["git"]["commit"]) == 40
    assert "numpy" in host["packages"]
    assert data["results"], "a run with no results"
    for r in data["results"]:
        assert set(r) >= RESULT_KEYS, f"{r['name']} misses {RESULT_KEYS - set(r)}"
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], r["name"]
        assert lat["n"] == r["iterations"] >= 1
        assert r["throughput"]["value"] > 0
        assert r["memory"]["peak_rss_mb"] >= r["memory"]["baseline_rss_mb"] > 0
        assert r["warmup"]["iterations"] >= 1
        assert len(r["samples_ms"]) == min(r["iterations"], 2000)


@pytest.mark.e2e
def test_bench_models_quick_measures_every_model_on_eager_and_onnx_cpu(
    quick_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _bench(["models", "--registry", str(quick_registry)], tmp_path / "m", capsys)
    _check_sane(data, "models")
    names = {r["params"]["model"].split(":")[0] for r in data["results"]}
    assert {"fundus-quality", "fundus-triage", "fundus-grader"} <= names
    by = {
        (r["params"]["model"].split(":")[0], r["params"]["backend"], r["params"]["batch"]): r
        for r in data["results"]
    }
    for name in ("fundus-quality", "fundus-triage", "fundus-grader"):
        for batch in (1, 4):
            eager = by[(name, "pytorch-eager", batch)]
            ort = by[(name, "onnx-cpu", batch)]
            assert eager["metrics"]["flops_per_image"] == ort["metrics"]["flops_per_image"] > 0
            # a share above 100 % is never printed: the peak is flagged unreliable instead
            share = ort["metrics"].get("fraction_of_peak")
            assert (0 < share <= 1.0) if share is not None else ort["metrics"]["peak_unreliable"]
            assert ort["metrics"]["speedup_vs_pytorch"] > 0
            # the same model on both runtimes: outputs agree (the export parity tolerance)
            assert ort["metrics"]["max_abs_diff_vs_pytorch"] < 1e-3
    if "traffic-counter" in names:  # E2's counter: ONNX always; eager only if rebuildable
        assert ("traffic-counter", "onnx-cpu", 1) in by
        assert ("traffic-counter", "pytorch-eager", 1) in by or any(
            u["what"] == "traffic-counter on pytorch-eager" for u in data["unavailable"]
        )
    peaks = data["sections"]["peak_flops"]
    assert peaks["pytorch-eager"]["gflops_per_s"] > 0
    assert peaks["onnx-cpu"]["gflops_per_s"] > 0
    # GPU backends on a host without a GPU are listed with the reason, never measured
    assert any(u["what"] == "backend onnx-cuda" for u in data["unavailable"])
    assert any("ORT CPU vs PyTorch eager" in k for k in data["headline"])
    pngs = {p.name for p in (tmp_path / "m").glob("*.png")}
    assert {"share_of_peak.png", "curve_batch_size.png", "latency_1.png"} <= pngs


@pytest.mark.e2e
def test_bench_models_with_an_empty_registry_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "models", "--quick", "--registry", str(tmp_path / "none")])
    assert code == 2
    err = capsys.readouterr().err
    assert "no models in registry" in err
    assert "edgeward models build" in err


@pytest.mark.mqtt
def test_bench_mqtt_quick_loses_nothing_at_qos_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _bench(["mqtt"], tmp_path / "q", capsys)
    _check_sane(data, "mqtt")
    for r in data["results"]:
        m = r["metrics"]
        assert m["sent"] > 0
        assert m["lost"] == 0
        assert m["received"] == m["sent"]
    assert {r["params"]["phase"] for r in data["results"]} == {"paced", "saturated", "drain"}
    assert {r["params"]["subscriber"] for r in data["results"]} == {"plain", "round1", "bridge"}
    assert data["headline"]["lost messages (all runs, must be 0)"] == 0
    assert any(k.startswith("bridge / round-1 bridge messages/s") for k in data["headline"])
    assert any(k.startswith("edge-to-cloud latency ms") for k in data["headline"])
    # each bridge replica ran in its own process and took a share of the shared subscription
    bridged = sum(
        r["metrics"]["received"] for r in data["results"] if r["params"]["subscriber"] == "bridge"
    )
    per_replica = data["sections"]["bridge"]["aggregates_per_replica"]
    assert all(len(counts) == 2 and min(counts) > 0 for counts in per_replica.values())
    assert sum(sum(counts) for counts in per_replica.values()) >= bridged  # warm-up included


@pytest.mark.mqtt
def test_bench_mqtt_names_a_dead_bridge_replica_instead_of_counting_its_messages_lost(
    tmp_path: Path,
) -> None:
    with MosquittoBroker(persistence=False) as broker:
        settings = MqttSettings(host=broker.host, port=broker.port)
        sub = Subscriber("bridge", settings, "t", 2, tmp_path)
        try:
            sub.resume()
            sub.check()  # both alive: nothing to say
            victim = sub.replica_pids[1]
            os.kill(victim, signal.SIGKILL)
            said: list[str] = []

            def named() -> bool:
                try:
                    sub.check()
                except EdgewardError as exc:
                    said.append(str(exc))
                return bool(said)

            wait_for(named, timeout=10, what="the dead replica named")
            assert f"replica process 1 (pid {victim}) exited with code -9" in said[0]
        finally:
            sub.close()


def test_compare_flags_a_run_slower_than_the_old_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["traffic", "--sizes", "10"]
    first = _bench(args, tmp_path / "first", capsys)
    # An "old" run 100x faster than anything real: the new run must be flagged as a regression.
    for r in first["results"]:
        r["latency_ms"] = {k: v / 100 for k, v in r["latency_ms"].items()}
        r["throughput"]["value"] *= 100
    (tmp_path / "old.json").write_text(json.dumps(first))
    code = main(
        [
            "bench",
            *args,
            "--quick",
            "--out",
            str(tmp_path / "second"),
            "--compare",
            str(tmp_path / "old.json"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 1
    assert "REGRESSION" in printed
    assert "new/old" in printed


def test_bench_help_lists_every_suite(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for suite in ("models", "edge", "cloud", "mqtt", "traffic"):
        assert suite in out


def test_compare_with_a_missing_file_fails_before_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "bench",
            "mqtt",
            "--quick",
            "--compare",
            str(tmp_path / "nope.json"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "file not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    shutil.rmtree(tmp_path / "o", ignore_errors=True)


def test_bench_traffic_quick_times_plans_for_every_network_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _bench(["traffic"], tmp_path / "t", capsys)
    _check_sane(data, "traffic")
    sizes = {r["params"]["junctions"] for r in data["results"]}
    assert sizes == {10, 100}
    for r in data["results"]:
        assert r["throughput"]["unit"] == "junctions/s"
        assert r["metrics"]["python_peak_mb"] > 0
        assert r["curve"]["x"] == r["params"]["junctions"]
    assert (tmp_path / "t" / "curve_intersections.png").exists()


def test_grid_topology_links_neighbours_so_downstream_queues_are_seen() -> None:
    from benchmarks.suites.traffic import grid_topology

    topo = grid_topology(12)
    assert len(topo.junctions) == 12
    feeds = topo.feeds()
    interior = topo.junctions["j1_1"]
    downstream = [link.out_edge for link in interior.links if link.out_edge in feeds]
    assert len(downstream) == len(interior.links)  # an interior junction feeds a neighbour always
    assert {feeds[e][0] for e in downstream} == {"j0_1", "j1_0", "j1_2", "j2_1"}


@pytest.mark.e2e
def test_bench_edge_quick_times_every_clinic_stage_end_to_end(
    quick_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _bench(["edge", "--registry", str(quick_registry)], tmp_path / "e", capsys)
    _check_sane(data, "edge")
    clinic = [r for r in data["results"] if r["name"].startswith("clinic/")]
    stages = {r["params"]["stage"] for r in clinic}
    assert {"decode", "quality", "triage", "end_to_end"} <= stages
    for fmt in ("jpeg", "dicom"):
        e2e = next(
            r
            for r in clinic
            if r["params"]["format"] == fmt and r["params"]["stage"] == "end_to_end"
        )
        # every measured scan got a verdict
        assert sum(e2e["metrics"]["verdicts"].values()) >= e2e["iterations"]
        parts = [
            r["latency_ms"]["p50"]
            for r in clinic
            if r["params"]["format"] == fmt and r["params"]["stage"] != "end_to_end"
        ]
        assert max(parts) <= e2e["latency_ms"]["max"]
    traffic = [r for r in data["results"] if r["name"].startswith("traffic-gateway/")]
    if traffic:
        assert {r["params"]["stage"] for r in traffic} == {
            "camera_health",
            "count",
            "aggregate",
            "end_to_end",
        }
    else:
        assert any(u["what"] == "traffic gateway path" for u in data["unavailable"])


@pytest.mark.e2e
def test_onnx_graph_flops_equal_the_torch_hook_count_of_the_same_model(
    quick_registry: Path,
) -> None:
    from benchmarks.flops import count_flops
    from models.complexity import count_flops as torch_flops
    from models.loading import load_torch_model
    from shared.registry import Registry

    registry = Registry(quick_registry)
    for name in ("fundus-quality", "fundus-triage", "fundus-grader"):
        model = registry.load_serving(name)
        size = int(model.manifest.input_shape[-1])
        counted = count_flops(model.path("onnx"), batch=1)
        assert counted["unresolved"] == []
        assert counted["flops"] == torch_flops(load_torch_model(model), size) > 0


@pytest.mark.ray
def test_bench_cloud_quick_sweeps_serve_variants_and_the_naive_peer(
    quick_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _bench(["cloud", "--registry", str(quick_registry)], tmp_path / "c", capsys)
    _check_sane(data, "cloud")
    paths = {r["params"]["path"] for r in data["results"]}
    assert {
        "serve batching+gradcam",
        "serve batch1+gradcam",
        "serve batching, no gradcam",
        "naive FastAPI+PyTorch",
        "in-process gradcam",
        "in-process ceiling",
    } <= paths, data["unavailable"]
    for r in data["results"]:
        if r["params"]["path"].startswith(("serve", "naive")):
            assert r["metrics"]["errors"] == 0, r["metrics"]["error_samples"]
    headline = data["headline"]
    for key in (
        "batching gain",
        "Serve vs naive peer throughput",
        "Serve overhead",
        "Serve vs in-process ceiling",
    ):
        assert any(k.startswith(key) for k in headline), (key, headline)
    assert (tmp_path / "c" / "curve_concurrency.png").exists()


@pytest.mark.gpu
def test_bench_models_on_the_gpu_backends_states_share_of_the_gpu_peak(
    quick_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["models", "--registry", str(quick_registry), "--model", "fundus-triage"]
    for kind in ("onnx-cpu", "onnx-cuda", "onnx-tensorrt", "tensorrt"):
        args += ["--backend", kind]
    data = _bench(args, tmp_path / "g", capsys)
    _check_sane(data, "models")
    gpu_rows = [r for r in data["results"] if r["params"]["backend"] != "onnx-cpu"]
    assert gpu_rows, data["unavailable"]
    assert data["sections"]["peak_flops"]["gpu"]["gflops_per_s"] > 0
    for r in gpu_rows:
        assert r["metrics"]["fraction_of_peak"] > 0
    assert any(g["driver"] for g in data["host"]["gpus"])
