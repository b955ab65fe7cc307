"""GPU backends on a real NVIDIA GPU: parity with ONNX Runtime CPU, engine cache, threads.

Skipped with the reason (tests/conftest.py) where no GPU exists, as on CI here.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from edge.backends import create_backend
from shared.preprocess import preprocess
from shared.registry import Registry, VerifiedModel
from sim.fundus.generator import generate_sample

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def triage(quick_registry: Path) -> VerifiedModel:
    return Registry(quick_registry).load_serving("fundus-triage")


def batch_for(model: VerifiedModel, n: int) -> np.ndarray:
    images = [generate_sample(22, i, size=256, defect_rate=0.0).image_bgr for i in range(n)]
    return np.stack([preprocess(im, model.manifest.preprocess) for im in images])


def test_onnx_cuda_matches_cpu(triage: VerifiedModel) -> None:
    batch = batch_for(triage, 4)
    cpu = create_backend("onnx-cpu", triage).run(batch)
    gpu = create_backend("onnx-cuda", triage)
    assert gpu.providers[0] == "CUDAExecutionProvider"
    out = gpu.run(batch)
    np.testing.assert_allclose(out["logits"], cpu["logits"], atol=1e-3)


def test_onnx_tensorrt_writes_its_engine_cache_and_reuses_it(
    triage: VerifiedModel, tmp_path: Path
) -> None:
    batch = batch_for(triage, 3)
    cpu = create_backend("onnx-cpu", triage).run(batch)
    first = create_backend("onnx-tensorrt", triage, cache_dir=tmp_path)
    assert first.providers[0] == "TensorrtExecutionProvider"
    out = first.run(batch)
    np.testing.assert_allclose(out["logits"], cpu["logits"], atol=5e-2)  # fp16
    engines = list(tmp_path.rglob("*.engine"))
    assert engines, "the TensorRT EP wrote no engine to the cache"
    stamp = {p: p.stat().st_mtime_ns for p in engines}
    second = create_backend("onnx-tensorrt", triage, cache_dir=tmp_path)
    second.run(batch)
    assert {p: p.stat().st_mtime_ns for p in engines} == stamp  # loaded, not rebuilt


def test_native_tensorrt_engine_matches_cpu_from_several_threads(
    quick_registry: Path, tmp_path: Path
) -> None:
    import shutil
    import subprocess

    registry = tmp_path / "registry"
    shutil.copytree(quick_registry, registry)
    edgeward = Path(__file__).resolve().parents[2] / ".venv/bin/edgeward"
    subprocess.run(
        [str(edgeward), "models", "trt", "fundus-triage", "--fp16", "--registry", str(registry)],
        check=True,
        timeout=900,
    )
    model = Registry(registry).load_serving("fundus-triage")
    backend = create_backend("tensorrt", model)
    cpu = create_backend("onnx-cpu", model)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            batch = batch_for(model, 1 + i)
            got = backend.run(batch)["logits"]
            np.testing.assert_allclose(got, cpu.run(batch)["logits"], atol=5e-2)
            results[i] = got
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    backend.close()
    assert not errors, errors
    assert sorted(results) == [0, 1, 2] and results[2].shape[0] == 3
